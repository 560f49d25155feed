"""Train the regression generator (L1, optional VGG perceptual loss): the seed's baseline.

accelerate launch train/vanilla.py --config configs/vanilla_512.yaml [section.key=value ...]
"""

# First, before the imports of seconds: a preemption signal during start-up is kept, and the
# run stops at its start with the requeue status, instead of dying with no status.
from ganmotion.training.preemption import PreemptionFlag

preemption = PreemptionFlag()

from ganmotion.training.cli import main  # noqa: E402
from ganmotion.training.config import VanillaConfig  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(VanillaConfig, preemption=preemption))
