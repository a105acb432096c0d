"""noisy-teachers: distilling knowledge from noisy teachers (Sau & Balasubramanian, 2016) in PyTorch.

The method is two functions. For a batch of student logits `g` and the teacher's logits `z`:

    from noisy_teachers.losses import logit_regression_loss    # eq. (1): 1/(2T) sum_i ||g_i - z_i||^2
    from noisy_teachers.noise import perturb_logits            # eq. (2): z' = (1 + xi) * z, each row with probability alpha
    loss = logit_regression_loss(g, perturb_logits(z, sigma=0.2, alpha=0.15))   # eq. (3), fresh noise at every call

The modules, from the ground floor up; each uses only those below it and is exported from one chapter of the book:
    checks (00a), jupyter (09)      argument checks shared by all; a server extension that keeps read chapters unchanged
    losses (00b), noise (01)        the method
    data (03), models (04)          whole splits as tensors on the device; the paper's architectures
    training (05)                   train_teacher, distil, Arm (what a student learns from), TrainConfig
    regularizer (02)                the regularizer the noise amounts to, measured
    experiments (06)                the paper's protocol and studies: get_config, run_benchmark, Run, Record
    distributed (08)                the same runs as Ray tasks (optional: pip install "ray>=2.9")
    cli (07), widgets (20)          the `noisy-teachers` command; the sliders for sigma and alpha
"""
__version__ = "0.1.0"
