"""Executors beyond this machine: Slurm (through submitit) and Ray.

``dispatch`` is the parent's loop (submit, reattach, harvest, manifest), shared by every
backend; ``task`` is what runs on the cluster (the same child subprocess as a local run);
``submitit_backend`` and ``ray_backend`` adapt the two engines; ``plan`` renders what would be
submitted for ``--dry-run``. The engines are imported lazily, only when a study uses them.
"""
