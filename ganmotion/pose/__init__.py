"""Keypoints: the schema, the MediaPipe detector, the skeleton renderer."""
