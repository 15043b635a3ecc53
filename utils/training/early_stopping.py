"""The paper's early stopping: when to stop, and which epoch's weights to keep for testing."""


class EarlyStopping:
    """The paper's early stopping (the reference TensorFlow code's rule).

    The patience counter resets whenever the validation loss or the validation metric is at least as
    good as the best seen so far; training stops after `patience` epochs without that. The model kept
    for testing is the last one that was at least as good as the best on *both* at once. Epochs are
    counted from 1, as on the console.
    """

    STATE = ("best_val_loss", "best_val_metric", "best_val_loss_epoch", "best_val_metric_epoch",
             "epochs_without_improvement", "best_epoch", "best_state", "best_model_val_loss", "best_model_val_metric")

    def __init__(self, patience):
        self.patience = patience
        self.best_val_loss = float("inf")          # the run's best values, whichever epochs they came from
        self.best_val_metric = float("-inf")
        self.best_val_loss_epoch = self.best_val_metric_epoch = None
        self.epochs_without_improvement = 0
        self.best_epoch = None                     # the kept model: its epoch, weights and own scores
        self.best_state = None
        self.best_model_val_loss = self.best_model_val_metric = None

    def step(self, epoch, val_loss, val_metric, model):
        """Record one epoch's validation result; return True when training should stop."""
        loss_ok, metric_ok = val_loss <= self.best_val_loss, val_metric >= self.best_val_metric
        if loss_ok and metric_ok:
            self.best_epoch = epoch
            self.best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
            self.best_model_val_loss, self.best_model_val_metric = val_loss, val_metric
        if loss_ok:
            self.best_val_loss, self.best_val_loss_epoch = val_loss, epoch
        if metric_ok:
            self.best_val_metric, self.best_val_metric_epoch = val_metric, epoch
        self.epochs_without_improvement = 0 if loss_ok or metric_ok else self.epochs_without_improvement + 1
        return self.should_stop()

    def should_stop(self):
        return self.epochs_without_improvement >= self.patience

    def state(self):
        return {name: getattr(self, name) for name in self.STATE}

    def load_state(self, state):
        for name in self.STATE:
            setattr(self, name, state[name])

    def describe_kept_model(self, metric_name):
        return (f"The model tested is from epoch {self.best_epoch}, the last epoch that matched or beat the best so "
                f"far on both validation loss and {metric_name} (the paper's rule): its validation loss is "
                f"{self.best_model_val_loss:.4f}, its {metric_name} {self.best_model_val_metric:.4f} (the run's best: "
                f"loss {self.best_val_loss:.4f} at epoch {self.best_val_loss_epoch}, {metric_name} "
                f"{self.best_val_metric:.4f} at epoch {self.best_val_metric_epoch}).")
