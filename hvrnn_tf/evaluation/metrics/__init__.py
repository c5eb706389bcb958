"""Video-prediction metrics: SSIM / PSNR (image_metrics), LPIPS (lpips), FVD
(fvd), the best-of-N protocol (best_of_n), KL per latent channel (kl), and a
torch-free reader of PyTorch weight files (torch_weights)."""
