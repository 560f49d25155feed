"""Train the regression generator (L1, optional VGG perceptual loss): the seed's baseline.

accelerate launch train/vanilla.py --config configs/vanilla_512.yaml [section.key=value ...]
"""

# First, before the imports of seconds: a preemption signal during start-up is kept, and the
# run stops at its start with the requeue status, instead of dying with no status.
from ganmotion.errors import interrupted_quietly
from ganmotion.training.preemption import PreemptionFlag

preemption = PreemptionFlag()

with interrupted_quietly():  # a Ctrl-C while torch loads: one line, not a traceback
    from ganmotion.training.cli import main
    from ganmotion.training.config import VanillaConfig

if __name__ == "__main__":
    raise SystemExit(main(VanillaConfig, preemption=preemption))
