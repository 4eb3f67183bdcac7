import json

import numpy as np
import pytest

from kpose.keypoints import KeypointSchema, SchemaError, builtin_schema_names, get_schema, load_schema, schema_from_dict

HAND = {
    "name": "hand5",
    "keypoints": ["wrist", "left_tip", "right_tip", "left_base", "right_base"],
    "flip_pairs": [[1, 2], [3, 4]],
    "skeleton": [[0, 3], [3, 1], [0, 4], [4, 2]],
    "sigmas": [0.05, 0.03, 0.03, 0.04, 0.04],
}


@pytest.mark.parametrize("name,k", [("coco", 17), ("mpii", 16), ("crowdpose", 14)])
def test_builtin_schemas(name, k):
    schema = get_schema(name)
    assert schema.num_keypoints == k and len(schema.sigmas) == k and len(schema.colors) == k
    flip = schema.flip_index
    np.testing.assert_array_equal(flip[flip], np.arange(k))  # an involution
    for a, b in schema.flip_pairs:
        left, right = schema.keypoints[a], schema.keypoints[b]
        assert left.replace("left", "right") == right or left.replace("right", "left") == right
    assert sorted(schema.upper_body + schema.lower_body) == list(range(k))
    assert len(schema.limb_colors()) == len(schema.skeleton)
    assert schema_from_dict(schema.to_dict()) == schema


def test_builtin_names_and_passthrough():
    assert builtin_schema_names() == ["coco", "crowdpose", "mpii"]
    coco = get_schema("COCO")
    assert get_schema(coco) is coco
    assert coco.index("left_wrist") == 9
    assert coco.sigmas[0] == pytest.approx(0.026)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_custom_schema_from_file(tmp_path, suffix):
    path = tmp_path / f"hand{suffix}"
    path.write_text(json.dumps(HAND))  # JSON is valid YAML too
    schema = get_schema(path)
    assert isinstance(schema, KeypointSchema)
    assert schema.num_keypoints == 5
    np.testing.assert_array_equal(schema.flip_index, [0, 2, 1, 4, 3])
    assert schema.upper_body == (0, 1, 2, 3, 4)  # no body split given: all keypoints
    assert load_schema(path) == schema


@pytest.mark.parametrize(
    "change,message",
    [
        ({"flip_pairs": [[1, 2], [3, 5]]}, r"'flip_pairs'\[1\] = \[3, 5\] points past the 5 keypoints"),
        ({"sigmas": [0.1, 0.1]}, r"'sigmas' must have one value per keypoint \(5\), got 2"),
        ({"sigmas": [0.1, 0.1, 0.1, 0.1, -1]}, r"'sigmas' must be positive"),
        ({"skeleton": [[0, 7]]}, r"'skeleton'\[0\]"),
        ({"flip_pairs": [[1, 2], [2, 3]]}, r"already paired"),
        ({"keypoints": ["a", "a", "b", "c", "d"]}, r"'keypoints' repeats \['a'\]"),
        ({"colour": [1, 2, 3]}, r"unknown field\(s\) \['colour'\]"),
        ({"upper_body": [0, 9]}, r"'upper_body'\[1\] = 9"),
    ],
)
def test_bad_schemas_name_file_and_field(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({**HAND, **change}))
    with pytest.raises(SchemaError, match=message) as info:
        load_schema(path)
    assert str(path) in str(info.value)


def test_missing_field_and_unknown_name(tmp_path):
    path = tmp_path / "nokp.json"
    path.write_text(json.dumps({"name": "x"}))
    with pytest.raises(SchemaError, match="missing required field 'keypoints'"):
        load_schema(path)
    with pytest.raises(SchemaError, match="built-in schemas are"):
        get_schema("halpe")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        load_schema(broken)
