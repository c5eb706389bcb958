"""The authors' release as the numerical oracle of bench.parity (runs under torch).

Runs under a Python that has torch (its own virtualenv, never a dependency of
this project) and imports the release (facebookresearch/improved_vrnn) from
--release_dir. Only the standard library and numpy are imported at module
level, so bench.parity imports the shared helpers (`noise`, `MODELS`)
without torch; its flags are argparse's (the torch virtualenv need not have
absl). Commands (one per run; arrays travel as .npz files):

  manifest  the release model's state-dict names and shapes (JSON);
  init      builds the model at --n_hid with torch.manual_seed(--seed), saves
            its state dict (--state) and per-tensor statistics (--stats);
  step      on --inputs (video, posterior noise): the decoder outputs, each
            level's prior/posterior mean and log-variance, the NLL, the
            analytic KL, every gradient of NLL + beta KL, then one Adam step
            and the updated weights (--out);
  train     --steps Adam steps on the batches of --inputs with noise(seed,
            step), printing one JSON line of losses per step (--out).

The release draws its posterior noise in flows.gaussian_rsample; the driver
replaces that function so that the noise given is used, level by level in
the release's order (posterior top-first, then the prior, whose draws a
teacher-forced pass does not use).
"""

import argparse
import json
import math
import os
import sys

import numpy as np

MODELS = {64: "s2s_big_hier_v4", 128: "s2s_big_hier_128"}


def noise(seed: int, step: int, batch: int, frames: int, levels) -> list:
  """Posterior noise of one step: per level [B, F, r, r, z] (ours, NHWC),
  from numpy's PCG64 so both frameworks can draw it. levels: [(r, z)]."""
  rng = np.random.Generator(np.random.PCG64([seed, step]))
  return [
    rng.standard_normal((batch, frames, r, r, z), dtype=np.float32)
    for r, z in levels
  ]


def _build(args):
  import torch  # pylint: disable=import-outside-toplevel

  sys.path.insert(0, args.release_dir)
  module = __import__(f"models.{MODELS[args.image_size]}", fromlist=["Model"])
  torch.manual_seed(args.seed)
  model = module.Model(args.channels, args.context_frames, n_hid=args.n_hid)
  if args.state:
    model.load_state_dict(torch.load(args.state, weights_only=True))
  return model.double() if args.float64 else model


def _use_noise(levels_noise, dtype):
  """Makes the release's sampler use `levels_noise` (NHWC numpy arrays)."""
  import flows  # pylint: disable=import-outside-toplevel,import-error
  import torch  # pylint: disable=import-outside-toplevel

  given = [
    torch.from_numpy(n.transpose(0, 1, 4, 2, 3)).to(dtype) for n in levels_noise
  ]
  calls = []

  def rsample(mean, logvar, use_mean=False):
    level = len(calls) % (2 * len(given))
    calls.append(level)
    if use_mean or level >= len(given):  # the prior's draws go unused
      return mean
    return mean + torch.exp(0.5 * logvar) * given[level]

  flows.gaussian_rsample = rsample


def _analytic_kl(p, q):
  """KL(q || p) of two diagonal Normals given as (mean, log-variance), elementwise."""
  import torch  # pylint: disable=import-outside-toplevel

  (pm, plv), (qm, qlv) = p, q
  return 0.5 * (
    plv - qlv + (torch.exp(qlv) + (qm - pm) ** 2) / torch.exp(plv) - 1
  )


def _forward(model, args, video, levels_noise):
  """One teacher-forced pass: (loss, nll, kl, preds, dists) of the release."""
  import torch  # pylint: disable=import-outside-toplevel
  import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

  dtype = torch.float64 if args.float64 else torch.float32
  frames = torch.from_numpy(video.transpose(0, 1, 4, 2, 3)).to(dtype)
  if levels_noise is not None:
    _use_noise(levels_noise, dtype)
  config = {"n_steps": frames.shape[1] - args.context_frames}
  config["n_ctx"] = args.context_frames
  (preds, priors, posteriors), _ = model(frames, config, use_prior=False)
  targets = frames[:, args.context_frames :]
  if args.rec_loss == "bernoulli":
    per_pixel = F.binary_cross_entropy(preds, targets, reduction="none")
  else:
    per_pixel = (preds - targets).abs()
  nll = per_pixel.flatten(1).sum(1)
  kl = [
    _analytic_kl(p[:2], q[:2]).flatten(1).sum(1)
    for p, q in zip(priors, posteriors)
  ]
  kl_total = torch.stack(kl, 1).sum(1)
  loss = (nll + args.beta * kl_total).mean()
  return loss, nll, kl_total, preds, (priors, posteriors)


def _optimizer(model, args):
  import torch  # pylint: disable=import-outside-toplevel

  return torch.optim.Adam(
    model.parameters(),
    lr=args.lr,
    betas=(args.beta_1, args.beta_2),
    weight_decay=args.weight_decay,
  )


def _numpy(tensor):
  return tensor.detach().double().numpy()


def step(args) -> dict:
  model = _build(args)
  inputs = np.load(args.inputs)
  levels_noise = [inputs[f"noise_{i}"] for i in range(int(inputs["levels"]))]
  loss, nll, kl, preds, (priors, posteriors) = _forward(
    model, args, inputs["video"], levels_noise
  )
  optimizer = _optimizer(model, args)
  optimizer.zero_grad()
  loss.backward()
  out = {
    "loss": _numpy(loss),
    "nll": _numpy(nll),
    "kl": _numpy(kl),
    "preds": _numpy(preds).transpose(0, 1, 3, 4, 2),
  }
  for kind, dists in (("prior", priors), ("posterior", posteriors)):
    for level, dist in enumerate(dists):
      for name, value in (("mean", dist[0]), ("logvar", dist[1])):
        out[f"{kind}_{level}_{name}"] = _numpy(value).transpose(0, 1, 3, 4, 2)
  for name, parameter in model.named_parameters():
    if parameter.grad is not None:
      out[f"grad/{name}"] = _numpy(parameter.grad)
  optimizer.step()
  for name, parameter in model.named_parameters():
    out[f"updated/{name}"] = _numpy(parameter)
  np.savez(args.out, **out)
  return {"loss": float(out["loss"])}


def train(args) -> dict:
  """--steps Adam steps; batches from --inputs, noise from `noise`."""
  import torch  # pylint: disable=import-outside-toplevel

  model = _build(args)
  if args.perturb:  # a rounding-sized change of every weight (control run)
    generator = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():
      for parameter in model.parameters():
        jitter = torch.randn(parameter.shape, generator=generator)
        parameter.mul_(1 + args.perturb * jitter)
  optimizer = _optimizer(model, args)
  inputs = np.load(args.inputs)
  videos, levels = inputs["videos"], [tuple(x) for x in inputs["level_shapes"]]
  frames = videos.shape[2] - args.context_frames
  losses = []
  for index in range(args.steps):
    video = videos[index % len(videos)]
    levels_noise = noise(args.seed, index, len(video), frames, levels)
    loss, nll, kl, _, _ = _forward(model, args, video, levels_noise)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    record = {
      "step": index,
      "loss": loss.item(),
      "nll": nll.mean().item(),
      "kl": kl.mean().item(),
    }
    losses.append(record)
    print(json.dumps(record), flush=True)
  with open(args.out, "w") as f:
    json.dump(losses, f)
  return losses[-1]


def _schedule(args, index):
  """(learning rate, beta) at step `index`: linear warmups, then flat (ours)."""
  lr_fraction = (
    min(index / args.lr_warmup_steps, 1.0) if args.lr_warmup_steps else 1.0
  )
  beta_fraction = (
    min(index / args.beta_warmup_steps, 1.0) if args.beta_warmup_steps else 1.0
  )
  lr = args.lr + (args.lr_peak - args.lr) * lr_fraction
  return lr, args.beta * beta_fraction


def study_train(args) -> dict:
  """The release as its authors train it (its init, noise and one-sample KL,
  losses.kl_loss) on the uint8 batches [N, B, T, H, W, C] of --inputs (.npy),
  with our schedules; resumes from --out's checkpoint; logs JSON lines."""
  import torch  # pylint: disable=import-outside-toplevel

  model, batches = _build(args), np.load(args.inputs, mmap_mode="r")
  import losses  # pylint: disable=import-outside-toplevel,import-error (the release's, on the path after _build)

  optimizer, start = _optimizer(model, args), 0
  checkpoint = args.out + ".pt"
  try:
    saved = torch.load(checkpoint, weights_only=True)
  except FileNotFoundError:
    saved = None
  if saved:
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    start = saved["step"]
  config = {"n_steps": batches.shape[2] - args.context_frames}
  config["n_ctx"] = args.context_frames
  config["rec_loss"] = "bce" if args.rec_loss == "bernoulli" else "l1"
  for index in range(start, args.steps):
    lr, beta = _schedule(args, index)
    for group in optimizer.param_groups:
      group["lr"] = lr
    video = np.asarray(batches[index], np.float32) / 255.0
    frames = torch.from_numpy(video.transpose(0, 1, 4, 2, 3))
    (preds, priors, posteriors), _ = model(frames, config, use_prior=False)
    nll = losses.reconstruction_loss(
      config, preds, frames[:, args.context_frames :]
    )
    kl = losses.kl_loss(config, priors, posteriors)
    loss = nll + beta * kl
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    record = {
      "step": index + 1,
      "loss": loss.item(),
      "nll": nll.item(),
      "kl": kl.item(),
    }
    print(json.dumps(record), flush=True)
    if (index + 1) % args.checkpoint_every == 0 or index + 1 == args.steps:
      state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
      torch.save({**state, "step": index + 1}, checkpoint + ".tmp")
      os.replace(checkpoint + ".tmp", checkpoint)
  return {"step": args.steps}


def study_eval(args) -> dict:
  """The study_train checkpoint on the uint8 test videos [S, T, H, W, C] of
  --inputs: the test -ELBO (its own posterior noise, the analytic KL) and
  --samples futures per sequence from its own sampler (train_fns.sample_step,
  O(T^2)), written to --out as [S, N, F, H, W, C]."""
  import torch  # pylint: disable=import-outside-toplevel

  checkpoint, args.state = args.state, None  # a study_train checkpoint
  model = _build(args)
  model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
  model.eval()
  import train_fns  # pylint: disable=import-outside-toplevel,import-error

  videos = np.load(args.inputs).astype(np.float32) / 255.0
  # The release's n_steps: predicted frames (datasets.py: seq_len = n_ctx + n_steps).
  config = {"n_steps": videos.shape[1] - args.context_frames}
  config["n_ctx"] = args.context_frames
  neg_elbo, nll, kl, samples = [], [], [], []
  with torch.no_grad():
    for video in videos:
      _, seq_nll, seq_kl, _, _ = _forward(model, args, video[None], None)
      nll.append(seq_nll.item())
      kl.append(seq_kl.item())
      frames = torch.from_numpy(video.transpose(0, 3, 1, 2))[None]
      (preds, _), _ = train_fns.sample_step(
        model, config, frames.repeat(args.samples, 1, 1, 1, 1)
      )
      future = preds[:, args.context_frames :].numpy()
      samples.append(future.transpose(0, 1, 3, 4, 2))
  np.save(args.out, np.stack(samples).astype(np.float32))
  neg_elbo = [a + b for a, b in zip(nll, kl)]
  return {
    "neg_elbo": float(np.mean(neg_elbo)),
    "nll": float(np.mean(nll)),
    "kl": float(np.mean(kl)),
  }


def init(args) -> dict:
  import torch  # pylint: disable=import-outside-toplevel

  model = _build(args)
  torch.save(model.state_dict(), args.out)
  if args.npz:
    np.savez(args.npz, **{k: v.numpy() for k, v in model.state_dict().items()})
  stats = {
    name: {
      "shape": list(t.shape),
      "std": float(t.float().std()) if t.numel() > 1 else 0.0,
    }
    for name, t in model.state_dict().items()
  }
  if args.stats:
    with open(args.stats, "w") as f:
      json.dump(stats, f, indent=1, sort_keys=True)
  return {
    "tensors": len(stats),
    "parameters": sum(math.prod(s["shape"]) for s in stats.values()),
  }


def manifest(args) -> dict:
  model = _build(args)
  names = {k: list(v.shape) for k, v in model.state_dict().items()}
  with open(args.out, "w") as f:
    json.dump(names, f, indent=1)
  return {"tensors": len(names)}


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "command",
    choices=("manifest", "init", "step", "train", "study_train", "study_eval"),
  )
  parser.add_argument("--release_dir", required=True)
  parser.add_argument(
    "--image_size", type=int, default=64, choices=sorted(MODELS)
  )
  parser.add_argument("--channels", type=int, default=1)
  parser.add_argument("--context_frames", type=int, default=5)
  parser.add_argument("--n_hid", type=int, default=16)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--state", help="State dict to load (step, train).")
  parser.add_argument("--stats", help="init: per-tensor statistics JSON.")
  parser.add_argument("--inputs", help="step/train: .npz of inputs.")
  parser.add_argument("--npz", help="init: the state dict as .npz too.")
  parser.add_argument("--out", required=True)
  parser.add_argument(
    "--rec_loss", default="bernoulli", choices=("bernoulli", "l1")
  )
  parser.add_argument("--beta", type=float, default=1.0)
  parser.add_argument("--lr", type=float, default=5e-4)
  parser.add_argument("--beta_1", type=float, default=0.5)
  parser.add_argument("--beta_2", type=float, default=0.9)
  parser.add_argument("--weight_decay", type=float, default=1e-4)
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--lr_peak", type=float, default=5e-4, help="study_train")
  parser.add_argument("--lr_warmup_steps", type=int, default=0)
  parser.add_argument("--beta_warmup_steps", type=int, default=0)
  parser.add_argument("--checkpoint_every", type=int, default=100)
  parser.add_argument("--samples", type=int, default=20, help="study_eval")
  parser.add_argument(
    "--perturb", type=float, default=0.0, help="train: relative weight noise"
  )
  parser.add_argument("--threads", type=int, default=0)
  parser.add_argument("--float64", type=int, default=0, help="1: in float64.")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  if args.threads:
    import torch  # pylint: disable=import-outside-toplevel

    torch.set_num_threads(args.threads)
  commands = {
    "manifest": manifest,
    "init": init,
    "step": step,
    "train": train,
    "study_train": study_train,
    "study_eval": study_eval,
  }
  print(json.dumps(commands[args.command](args)))


if __name__ == "__main__":
  main()
