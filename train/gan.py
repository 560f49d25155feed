"""Train the conditional WGAN-GP generator.

accelerate launch train/gan.py --config configs/gan_512.yaml [section.key=value ...]
accelerate launch train/gan.py --config configs/gan_512.yaml --resume latest
"""

from ganmotion.training.cli import main
from ganmotion.training.config import GanConfig

if __name__ == "__main__":
    raise SystemExit(main(GanConfig))
