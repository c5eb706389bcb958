"""Training: the recipe (TrainConfig), Trainer, the loop and its hooks, optimiser and schedules, checkpoints, preemption, summaries, progress and tf.distribute."""
