"""The GAT's shape from the training flags, named as the original's gat_config: --num_of_layers,
--num_heads_per_layer, --hidden_features, --dropout, --add_skip_connection.

A flag left out takes the dataset's paper value (`base`, e.g. CITATION_ARCHITECTURE of utils/training/one_graph.py).
With another number of layers, every hidden layer takes the paper's hidden heads and features and the output
layer its output heads:

    resolve_architecture(dict(num_of_layers=3), CITATION_ARCHITECTURE)
    -> num_heads_per_layer [8, 8, 1], hidden_features [8, 8], dropout 0.6, no skip connections
"""

from utils.plumbing.arguments import SettingsError

ARCHITECTURE_KEYS = ("num_of_layers", "num_heads_per_layer", "hidden_features", "dropout", "add_skip_connection")


def resolve_architecture(config, base):
    """The architecture (for setup.build_model) that the settings in `config` ask for, the values left out (None)
    taken from `base`. SettingsError, in the flags' words, for settings that do not fit together."""
    heads = config.get("num_heads_per_layer")
    num_of_layers = config.get("num_of_layers") or (len(heads) if heads else base["num_of_layers"])
    if heads is None:
        heads = (base["num_heads_per_layer"] if num_of_layers == base["num_of_layers"] else
                 [base["num_heads_per_layer"][0]] * (num_of_layers - 1) + [base["num_heads_per_layer"][-1]])
    elif len(heads) != num_of_layers:
        raise SettingsError(f"--num_heads_per_layer needs one number per layer ({num_of_layers} for "
                            f"--num_of_layers {num_of_layers}), got {' '.join(map(str, heads))}")
    hidden = config.get("hidden_features")
    if hidden is None:
        hidden = [base["hidden_features"][0]]
    elif isinstance(hidden, int):  # (the PPI trainer's setting was one number before it was a list)
        hidden = [hidden]
    if len(hidden) == 1:
        hidden = list(hidden) * (num_of_layers - 1)  # one number: every hidden layer
    elif len(hidden) != num_of_layers - 1:
        raise SettingsError(f"--hidden_features needs one number per hidden layer ({num_of_layers - 1} for "
                            f"--num_of_layers {num_of_layers}) or one for all, got {' '.join(map(str, hidden))}")
    dropout = base["dropout"] if config.get("dropout") is None else config["dropout"]
    if not 0.0 <= dropout < 1.0:
        raise SettingsError(f"--dropout must be in [0, 1), got {dropout}")
    skip = config.get("add_skip_connection")
    return dict(num_of_layers=num_of_layers, num_heads_per_layer=list(heads), hidden_features=list(hidden),
                add_skip_connection=base["add_skip_connection"] if skip is None else skip, bias=base["bias"],
                dropout=dropout)


def recorded(architecture):
    """The architecture's settings as the run records them (checkpoint settings, results JSON), hidden_features
    as it is typed: one number when every hidden layer has the same."""
    hidden = architecture["hidden_features"]
    return dict({key: architecture[key] for key in ARCHITECTURE_KEYS},
                hidden_features=hidden[:1] if len(set(hidden)) == 1 else list(hidden))


def from_checkpoint_model(config, checkpoint):
    """`config` with the architecture settings it lacks (None) read from the checkpoint's model, for a run resumed
    from a checkpoint older than these flags: it continues with the shape it was trained with."""
    model = checkpoint["config"]
    saved = dict(num_of_layers=model["num_of_layers"], num_heads_per_layer=list(model["num_heads_per_layer"]),
                 hidden_features=list(model["num_features_per_layer"][1:-1]), dropout=model["dropout"],
                 add_skip_connection=model["add_skip_connection"])
    return dict(config, **{key: value for key, value in saved.items() if config.get(key) is None})


def describe_architecture(settings):
    """A short description for the console and the run list: '8x8 1, dropout 0.6' (heads x features per hidden
    layer, then the output heads), ', skip' with skip connections; None when the settings do not say."""
    heads, hidden = settings.get("num_heads_per_layer"), settings.get("hidden_features")
    if not heads or hidden is None:
        return None
    hidden = [hidden] if isinstance(hidden, int) else hidden
    hidden = hidden * (len(heads) - 1) if len(hidden) == 1 else hidden  # (one number: every hidden layer)
    layers = [f"{h}x{f}" for h, f in zip(heads[:-1], hidden)] + [str(heads[-1])]
    skip = ", skip" if settings.get("add_skip_connection") else ""
    return f"{' '.join(layers)}, dropout {settings.get('dropout'):g}{skip}"
