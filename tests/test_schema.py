import numpy as np

from ganmotion.pose import schema


def test_schema_has_33_mediapipe_joints_and_valid_limbs():
    assert schema.NUM_JOINTS == 33
    assert schema.JOINT_NAMES[0] == "nose" and schema.JOINT_NAMES[32] == "right_foot_index"
    assert len(schema.LIMBS) == len(schema.LIMB_COLOURS) == 35
    assert all(0 <= a < 33 and 0 <= b < 33 and a != b for a, b in schema.LIMBS)


def test_flip_permutation_swaps_every_left_joint_with_its_right_twin():
    perm = schema.FLIP_PERMUTATION
    assert np.array_equal(perm[perm], np.arange(33))  # an involution
    for left, right in schema.LEFT_RIGHT_PAIRS:
        a, b = schema.JOINT_NAMES[left], schema.JOINT_NAMES[right]
        assert a.replace("left", "X") == b.replace("right", "X")
    assert perm[schema.JOINT["nose"]] == schema.JOINT["nose"]
    assert len(schema.LEFT_RIGHT_PAIRS) == 16


def test_flip_keypoints_mirrors_x_and_swaps_sides():
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 100, (33, 3)).astype(np.float32)
    flipped = schema.flip_keypoints(keypoints, width=100)
    left, right = schema.JOINT["left_wrist"], schema.JOINT["right_wrist"]
    assert flipped[left, 0] == np.float32(99) - keypoints[right, 0]
    assert flipped[left, 1] == keypoints[right, 1]
    np.testing.assert_allclose(schema.flip_keypoints(flipped, width=100), keypoints, atol=1e-5)


def test_reduced_view_is_the_seed_13_joints():
    assert len(schema.REDUCED_JOINTS) == 13
    assert [schema.JOINT_NAMES[i] for i in schema.REDUCED_JOINTS] == list(
        schema.REDUCED_JOINT_NAMES
    )


def test_missing_frame_is_nan_not_zeros():
    frames = np.stack([schema.missing_frame(), np.zeros((33, 3), np.float32)])
    assert schema.has_person(frames).tolist() == [False, True]
