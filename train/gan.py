"""Train the conditional WGAN-GP generator.

accelerate launch train/gan.py --config configs/gan_512.yaml [section.key=value ...]
accelerate launch train/gan.py --config configs/gan_512.yaml --resume latest
"""

# First, before the imports of seconds: a preemption signal during start-up is kept, and the
# run stops at its start with the requeue status, instead of dying with no status.
from ganmotion.training.preemption import PreemptionFlag

preemption = PreemptionFlag()

from ganmotion.training.cli import main  # noqa: E402
from ganmotion.training.config import GanConfig  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(GanConfig, preemption=preemption))
