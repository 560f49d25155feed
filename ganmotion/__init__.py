"""ganmotion: pose-guided motion transfer."""
