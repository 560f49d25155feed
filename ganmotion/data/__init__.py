"""Training data: video -> WebDataset shards, the shard stream, synthetic clips."""
