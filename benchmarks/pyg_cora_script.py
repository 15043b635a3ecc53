"""PyTorch Geometric's GAT on Cora, written the way PyG's examples train it, with the paper's early stopping.

    python -m benchmarks.pyg_cora_script --num_of_epochs 320 --data_dir DIR

The opponent of `bench_speed --workloads cli`: the same epoch as training_script_cora.py (a training step, a
validation pass, `.item()` of loss and accuracy for both, the patience rule with a copy of the best weights,
a console line every 100 epochs), the same data (this repository's Cora loader, so no download) and the same
architecture (2 layers, 8 heads x 8 features, dropout 0.6, Adam lr 0.005, weight decay 5e-4), built from
`torch_geometric.nn.GATConv`. Not a training script of this repository: a yardstick.
"""

import argparse
import copy
import time

import torch
import torch.nn.functional as F


def main(argv=None):
    from torch_geometric.nn import GATConv

    from utils.datasets.planetoid import load_planetoid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_of_epochs", type=int, default=10000)
    parser.add_argument("--patience_period", type=int, default=100)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the model trains (default: cuda when there is a GPU, as training_script_cora.py)")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    print(f"Using device: {device}", flush=True)

    data = load_planetoid("cora", args.data_dir).to(device)
    x, edge_index, y = data.node_features, data.edge_index, data.labels

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            # Our edge_index already holds one self loop per node.
            self.conv1 = GATConv(x.shape[1], 8, heads=8, dropout=0.6, add_self_loops=False)
            self.conv2 = GATConv(64, data.num_classes, heads=1, concat=False, dropout=0.6, add_self_loops=False)

        def forward(self, x, edge_index):
            x = F.dropout(x, p=0.6, training=self.training)
            x = F.elu(self.conv1(x, edge_index))
            x = F.dropout(x, p=0.6, training=self.training)
            return self.conv2(x, edge_index)

    model = Net().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005, weight_decay=5e-4)
    best_loss, best_acc, best_state, waited = float("inf"), 0.0, None, 0
    start = time.perf_counter()
    for epoch in range(1, args.num_of_epochs + 1):
        model.train()
        optimizer.zero_grad()
        out = model(x, edge_index)
        loss = F.cross_entropy(out[data.train_indices], y[data.train_indices])
        loss.backward()
        optimizer.step()
        train_loss = loss.item()
        train_acc = (out[data.train_indices].argmax(-1) == y[data.train_indices]).float().mean().item()

        model.eval()
        with torch.no_grad():
            out = model(x, edge_index)
            val_loss = F.cross_entropy(out[data.val_indices], y[data.val_indices]).item()
            val_acc = (out[data.val_indices].argmax(-1) == y[data.val_indices]).float().mean().item()
        if val_loss <= best_loss or val_acc >= best_acc:
            if val_loss <= best_loss and val_acc >= best_acc:
                best_state = copy.deepcopy(model.state_dict())
            best_loss, best_acc, waited = min(best_loss, val_loss), max(best_acc, val_acc), 0
        else:
            waited += 1
            if waited >= args.patience_period:
                break
        if epoch % 100 == 0:
            print(f"epoch {epoch} | {time.perf_counter() - start:.1f}s | train loss {train_loss:.4f} acc "
                  f"{train_acc:.4f} | val loss {val_loss:.4f} acc {val_acc:.4f}")
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        test_acc = (model(x, edge_index)[data.test_indices].argmax(-1) == y[data.test_indices]).float().mean().item()
    print(f"Test accuracy = {test_acc:.4f}")


if __name__ == "__main__":
    main()
