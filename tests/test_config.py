"""Config: YAML recipes, dotted overrides, and one clear error per bad key, type or value."""

import subprocess
import sys
import typing
from pathlib import Path

import pytest

from pix2color.config import (
    RELEASED,
    RESUME_SAFE,
    TRAINING_ONLY,
    Config,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    marked_keys,
    released_config,
    rgb_term_weights,
    save_config,
)
from pix2color.errors import ConfigError
from pix2color.metric_names import METRIC_SPECS

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str, name: str = "run.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def test_the_configs_folder_holds_the_recipes():
    names = {path.stem for path in RECIPES}
    assert {"quickstart", "resnet18_256", "resnet34_256", "vgg16_bn_256", "fast_resnet18_128"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.name)
def test_every_recipe_loads(path):
    assert isinstance(load_config(path), Config)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "quickstart",
            {
                "data.size": 128,
                "model.encoder": "efficientnet_lite0",
                "model.pretrained": "imagenet",
                "model.last_cross": False,
            },
        ),
        ("resnet18_256", {"data.size": 256, "model.encoder": "resnet18", "stage1.epochs": 20, "stage2.epochs": 20}),
        ("resnet34_256", {"data.size": 256, "model.encoder": "resnet34", "model.pretrained": "imagenet"}),
        ("vgg16_bn_256", {"model.encoder": "vgg16_bn", "model.encoder_frozen_epochs": 5, "model.encoder_lr_mult": 0.1}),
        ("fast_resnet18_128", {"data.size": 128, "model.last_cross": False, "train.amp": True}),
    ],
)
def test_recipe_values(name, expected):
    cfg = load_config(CONFIGS / f"{name}.yaml")
    for key, value in expected.items():
        section, field = key.split(".")
        assert getattr(getattr(cfg, section), field) == value, key


def test_defaults_are_the_standard_recipe():
    cfg = load_config()
    assert cfg.data.size == 256
    assert cfg.model.encoder == "resnet18"
    assert cfg.train.batch_size == 16
    assert (cfg.stage1.epochs, cfg.stage2.epochs) == (20, 20)
    assert (cfg.stage2.lr, cfg.stage2.beta1, cfg.stage2.lambda_l1) == (5e-5, 0.5, 100.0)
    stage2 = (cfg.stage2.gan_loss, cfg.stage2.real_label, cfg.stage2.ema_decay, cfg.stage2.gan_ramp_steps)
    assert stage2 == ("lsgan", 0.9, 0.99, 200) and cfg.stage2.colorfulness_weight == 0.1
    assert cfg.disc.norm == "spectral"  # the measured stage-2 recipe of docs/quality.md
    assert cfg.data.train == [] and cfg.color.space == "lab"


@pytest.mark.parametrize(
    ("override", "section", "field", "expected"),
    [
        ("train.batch_size=8", "train", "batch_size", 8),
        ("stage1.lr=0.0005", "stage1", "lr", 5e-4),
        ("stage1.lr=1e-4", "stage1", "lr", 1e-4),  # YAML 1.1 reads 1e-4 as a string
        ("stage2.lambda_l1=50", "stage2", "lambda_l1", 50.0),
        ("train.amp=false", "train", "amp", False),
        ("model.self_attention=true", "model", "self_attention", True),
        ("model.encoder=resnet34", "model", "encoder", "resnet34"),
        ("model.pretrained=/weights/r18.pth", "model", "pretrained", "/weights/r18.pth"),
        ("data.train=/photos", "data", "train", ["/photos"]),
        ("data.train=2024", "data", "train", ["2024"]),
        ("data.train=[/a, /b]", "data", "train", ["/a", "/b"]),
        ("color.space=luv", "color", "space", "luv"),
    ],
)
def test_override_parses_its_type(override, section, field, expected):
    value = getattr(getattr(load_config(None, [override]), section), field)
    assert value == expected and type(value) is type(expected)


def test_overrides_apply_after_the_file_and_in_order():
    cfg = load_config(CONFIGS / "quickstart.yaml", ["data.size=64", "data.size=96"])
    assert cfg.data.size == 96 and cfg.model.encoder == "efficientnet_lite0"


def test_an_override_can_repair_an_invalid_file_value(write_yaml):
    assert load_config(write_yaml("data:\n  size: 100\n"), ["data.size=128"]).data.size == 128


def test_a_float_written_like_1e_4_in_yaml_is_a_float(write_yaml):
    assert load_config(write_yaml("stage1:\n  lr: 1e-4\n")).stage1.lr == pytest.approx(1e-4)


def test_a_section_with_every_key_commented_out_keeps_its_defaults(write_yaml):
    assert load_config(write_yaml("stage2:\n  # epochs: 5\n")).stage2.epochs == 20


def test_an_empty_file_gives_the_defaults(write_yaml):
    assert load_config(write_yaml("")) == Config()


def test_unknown_key_in_yaml_names_the_key_the_file_and_the_valid_keys(write_yaml):
    path = write_yaml("train:\n  bath_size: 8\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "train.bath_size" in message and str(path) in message
    assert "did you mean 'train.batch_size'?" in message and "channels_last" in message


def test_a_key_close_to_none_gets_no_guess():
    with pytest.raises(ConfigError, match=r"unknown key 'train.zzz'; valid keys in 'train'"):
        load_config(None, ["train.zzz=1"])


def test_unknown_section_in_yaml_lists_the_sections(write_yaml):
    with pytest.raises(ConfigError, match=r"unknown key 'optim'.*'stage1'"):
        load_config(write_yaml("optim:\n  lr: 0.1\n"))


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.bath_size=8", r"^--set: unknown key 'train.bath_size'; did you mean 'train.batch_size'\?"),
        ("trian.batch_size=8", r"^--set: unknown key 'trian.batch_size'.*'train'"),
        ("batch_size=8", r"^--set: unknown key 'batch_size'"),
        ("train.batch_size", r"^--set: 'train.batch_size' is not key=value"),
    ],
)
def test_bad_override_names_set_and_the_key(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, [override])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train:\n  batch_size: eight\n", r"train.batch_size must be int, got 'eight' \(str\)"),
        ("train:\n  batch_size: 8.5\n", r"train.batch_size must be int, got 8.5 \(float\)"),
        ("train:\n  batch_size: true\n", r"train.batch_size must be int, got True \(bool\)"),
        ("train:\n  amp: 1\n", r"train.amp must be bool, got 1 \(int\)"),
        ("stage1:\n  lr: fast\n", r"stage1.lr must be float, got 'fast' \(str\)"),
        ("stage1:\n  lr: .inf\n", r"stage1.lr=inf must be a finite number"),
        ("data:\n  train: {a: 1}\n", r"data.train must be a list of str"),
        ("train: 8\n", r"'train' must be a mapping of keys"),
        ("- data\n", r"top level must be a mapping"),
    ],
)
def test_wrong_type_names_the_key_and_the_type(write_yaml, text, expected):
    path = write_yaml(text)
    with pytest.raises(ConfigError, match=expected) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


def test_wrong_type_in_an_override_names_set():
    with pytest.raises(ConfigError, match=r"^--set: train.batch_size must be int, got 'big' \(str\)"):
        load_config(None, ["train.batch_size=big"])


def test_yaml_syntax_error_names_the_file_and_the_line(write_yaml):
    path = write_yaml("data:\n  size: 128\n  train: [a, b\nmodel:\n  encoder: resnet18\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line \d+") as info:
        load_config(path)
    assert str(path) in str(info.value)
    line = int(str(info.value).split("at line ")[1].split(";")[0])
    assert 3 <= line <= 5


def test_tab_indentation_error_names_the_line(write_yaml):
    with pytest.raises(ConfigError, match=r"YAML syntax error at line 2"):
        load_config(write_yaml("train:\n\tbatch_size: 8\n"))


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope.yaml does not exist.*configs/"):
        load_config(missing)


def test_a_binary_file_passed_as_config_is_a_config_error(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"PK\x03\x04\xff\xfe\x00\x80 not yaml")
    with pytest.raises(ConfigError, match=r"last.pt is not a text YAML file"):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("stage1.lr=-0.001", r"stage1.lr=-0.001 must be greater than 0"),
        ("stage1.lr=0", r"stage1.lr=0.0 must be greater than 0"),
        ("stage2.lr=-2e-4", r"stage2.lr=-0.0002 must be greater than 0"),
        ("train.batch_size=0", r"train.batch_size=0 must be greater than 0"),
        ("stage1.epochs=-1", r"stage1.epochs=-1 must be 0 or more"),
        ("data.val_fraction=1.5", r"data.val_fraction=1.5 must be in \[0, 1\)"),
        ("data.max_bad_fraction=-0.1", r"data.max_bad_fraction=-0.1 must be in \[0, 1\)"),
        ("stage2.beta1=1", r"stage2.beta1=1.0 must be in \[0, 1\)"),
        ("train.ema_decay=1.0", r"train.ema_decay=1.0 must be in \[0, 1\)"),
        ("model.encoder=resnet9", r"model.encoder='resnet9' is not valid; valid values: resnet18, resnet34"),
        ("color.space=hsv", r"color.space='hsv' is not valid; valid values: lab, luv"),
        ("stage2.gan_loss=wgan", r"valid values: vanilla, lsgan, hinge"),
        ("model.chroma_head=classes", r"model.chroma_head='classes' is not valid; valid values: regression, bins"),
        ("model.bins_temperature=0", r"model.bins_temperature=0.0 must be greater than 0"),
        ("stage1.prior_mix=1.5", r"stage1.prior_mix=1.5 must be in \(0, 1\]; 1 turns rebalancing off"),
        ("stage1.prior_mix=0", r"stage1.prior_mix=0.0 must be in \(0, 1\]"),  # 0 divides by unseen colours
        (
            "stage1.small_size=48",
            r"stage1.small_size=48 must be a positive multiple of 32; nearest valid sizes: "
            r"32, 64. 0 turns progressive resizing off",
        ),
        (
            "stage1.small_size=128",
            r"stage1.small_size=128 must be below data.size=128; set a smaller multiple of 32, "
            r"or stage1.small_size=0 to turn progressive resizing off",
        ),
        ("stage1.small_share=1", r"stage1.small_share=1.0 must be in \[0, 1\)"),
        ("disc.hints=true", r"disc.hints=true shows D the generator's hints, so it needs model.hints=true too"),
    ],
)
def test_invalid_value_in_an_override_is_refused_naming_set(override, expected):
    with pytest.raises(ConfigError, match=r"^--set: .*" + expected):
        load_config(CONFIGS / "quickstart.yaml", [override])


def test_quickstart_at_a_smaller_size_names_its_progressive_resizing_and_how_to_turn_it_off():
    with pytest.raises(
        ConfigError,
        match=r"quickstart.yaml: stage1.small_size=64 must be below data.size=64; .*"
        r"stage1.small_size=0 to turn progressive resizing off",
    ):
        load_config(CONFIGS / "quickstart.yaml", ["data.size=64"])
    assert load_config(CONFIGS / "quickstart.yaml", ["data.size=64", "stage1.small_size=0"]).data.size == 64


@pytest.mark.parametrize(
    ("size", "nearest"),
    [(100, "96, 128"), (130, "128, 160"), (0, "32, 64"), (-64, "32, 64"), (257, "256, 288")],
)
def test_size_not_a_multiple_of_32_lists_the_nearest_valid_sizes(write_yaml, size, nearest):
    path = write_yaml(f"data:\n  size: {size}\n")
    with pytest.raises(
        ConfigError, match=f"data.size={size} must be a positive multiple of 32; nearest valid sizes: {nearest}"
    ):
        load_config(path)


def test_invalid_value_in_the_file_names_the_file(write_yaml):
    path = write_yaml("stage1:\n  lr: -1.0e-3\n")
    with pytest.raises(ConfigError, match="must be greater than 0") as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: stage1.lr=-0.001")


def test_unknown_encoder_in_the_file_lists_every_valid_encoder(write_yaml):
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml("model:\n  encoder: efficientnet_b0\n"))
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "vgg16_bn"):
        assert name in str(info.value)


def test_config_errors_are_one_line(write_yaml):
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml("train:\n  bath_size: 8\n"))
    assert "\n" not in str(info.value)


def test_dict_round_trip_is_exact():
    cfg = load_config(CONFIGS / "vgg16_bn_256.yaml", ["data.train=[/a, /b]", "stage1.lr=3e-4"])
    assert config_from_dict(config_to_dict(cfg), "a checkpoint") == cfg


def test_dict_from_a_checkpoint_is_checked():
    raw = config_to_dict(Config())
    raw["model"]["encoder"] = "resnet9"
    with pytest.raises(ConfigError, match=r"^a checkpoint: model.encoder='resnet9'"):
        config_from_dict(raw, "a checkpoint")


@pytest.mark.parametrize("path", RECIPES, ids=lambda path: path.name)
def test_saved_config_loads_back_equal(tmp_path, path):
    cfg = load_config(path, ["data.train=[/photos, /more photos]", "stage1.lr=1e-8", "model.fusion=none"])
    saved = tmp_path / "config.yaml"
    save_config(cfg, saved)
    assert load_config(saved) == cfg


NAMED_CHOICES = [
    ("model.encoder", "pix2color.models.generator:ENCODERS"),
    ("model.chroma_head", "pix2color.models.generator:CHROMA_HEADS"),
    ("model.encoder_input", "pix2color.models.encoder_input:ENCODER_INPUTS"),
    ("disc.norm", "pix2color.models.discriminator:NORMS"),
    ("stage2.gan_loss", "pix2color.losses:GAN_LOSSES"),
    ("stage1.schedule", "pix2color.training.schedules:STAGE1_SCHEDULES"),
    ("stage2.g_schedule", "pix2color.training.schedules:STAGE2_SCHEDULES"),
    ("stage2.d_schedule", "pix2color.training.schedules:STAGE2_SCHEDULES"),
]


@pytest.mark.parametrize("key,table", NAMED_CHOICES)
def test_each_named_choice_of_the_schema_is_exactly_its_builder_table(key, table):
    """The coverage test: every name the schema accepts has a builder, and every builder a name."""
    import importlib

    module, _, attribute = table.partition(":")
    section, _, name = key.partition(".")
    choices = typing.get_args(typing.get_type_hints(type(getattr(Config(), section)))[name])
    assert list(getattr(importlib.import_module(module), attribute)) == list(choices)


@pytest.mark.parametrize("key", [key for key, _ in NAMED_CHOICES] + ["train.best_metric", "stage2.best_metric"])
def test_an_unknown_name_is_one_line_listing_the_valid_ones(key):
    section, _, name = key.partition(".")
    choices = typing.get_args(typing.get_type_hints(type(getattr(Config(), section)))[name])
    with pytest.raises(ConfigError) as caught:
        load_config(None, [f"{key}=no_such_name"])
    assert str(caught.value) == f"--set: {key}='no_such_name' is not valid; valid values: {', '.join(choices)}."


def test_best_metric_choices_are_the_metrics_with_a_direction():
    choices = typing.get_args(typing.get_type_hints(TrainConfig)["best_metric"])
    assert set(choices) == {name for name, spec in METRIC_SPECS.items() if spec.higher_is_better is not None}
    assert {"psnr", "ciede2000", "color_fidelity"} <= set(choices)


def test_loading_and_checking_a_config_imports_no_torch():
    """A typo in --set is reported before torch loads (about 0.1 s instead of 5 s)."""
    code = (
        "import sys\n"
        "from pix2color.config import load_config\n"
        "from pix2color.errors import ConfigError\n"
        "try:\n"
        "    load_config('configs/quickstart.yaml', ['model.encoder=resnet19'])\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.splitlines() == [
        "--set: model.encoder='resnet19' is not valid; valid values: resnet18, resnet34, resnet50, resnet101, "
        "vgg16_bn, efficientnet_lite0, efficientnet_lite1, efficientnet_lite2.",
        "False",
    ]


@pytest.mark.parametrize(
    "mark,keys",
    [
        (RESUME_SAFE, {"data.workers", "train.device", "train.compile", "train.save_every_steps"}),
        (
            TRAINING_ONLY,
            {
                "model.pretrained",
                "model.encoder_frozen_epochs",
                "model.encoder_frozen_share",
                "model.encoder_batchnorm",
                "model.encoder_lr_mult",
            },
        ),
        (RELEASED, {"data.size", "model.encoder", "color.space"}),
    ],
)
def test_marked_keys_are_read_from_the_fields(mark, keys):
    marked = marked_keys(mark)
    assert keys <= set(marked)
    assert "stage1.lr" not in marked and "data.train" not in marked


def test_rgb_term_weights_name_the_marked_weights_that_are_on():
    cfg = load_config(
        None, ["stage2.colorfulness_weight=0", "stage2.ciede2000_weight=2", "stage2.perceptual_weight=0.5"]
    )
    assert rgb_term_weights(cfg.stage2) == {"ciede2000": 2.0, "perceptual": 0.5}


def test_a_release_keeps_the_model_the_color_space_and_the_training_size():
    cfg = load_config(None, ["data.size=96", "model.encoder=resnet34"])
    kept = released_config(cfg)
    assert kept["data"] == {"size": 96} and kept["model"]["encoder"] == "resnet34" and kept["color"] == {"space": "lab"}
    assert set(kept) == {"data", "color", "model"}


def test_color_fidelity_is_refused_for_stage_1_before_any_training():
    with pytest.raises(ConfigError, match=r"--set: train.best_metric=color_fidelity .* stage2.best_metric"):
        load_config(CONFIGS / "quickstart.yaml", ["train.best_metric=color_fidelity"])
    assert load_config(CONFIGS / "quickstart.yaml", ["stage2.best_metric=psnr"]).stage2.best_metric == "psnr"
