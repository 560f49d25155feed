"""Train the regression generator (L1, optional VGG perceptual loss): the seed's baseline.

accelerate launch train/vanilla.py --config configs/vanilla_512.yaml [section.key=value ...]
"""

from ganmotion.training.cli import main
from ganmotion.training.config import VanillaConfig

if __name__ == "__main__":
    raise SystemExit(main(VanillaConfig))
