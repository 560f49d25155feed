"""Train the conditional WGAN-GP generator.

accelerate launch train/gan.py --config configs/gan_512.yaml [section.key=value ...]
accelerate launch train/gan.py --config configs/gan_512.yaml --resume latest
"""

# First, before the imports of seconds: a preemption signal during start-up is kept, and the
# run stops at its start with the requeue status, instead of dying with no status.
from ganmotion.errors import interrupted_quietly
from ganmotion.training.preemption import PreemptionFlag

preemption = PreemptionFlag()

with interrupted_quietly():  # a Ctrl-C while torch loads: one line, not a traceback
    from ganmotion.training.cli import main
    from ganmotion.training.config import GanConfig

if __name__ == "__main__":
    raise SystemExit(main(GanConfig, preemption=preemption))
