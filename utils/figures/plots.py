"""Drawing: every figure of the project, from plain tensors. The dataset (graph drawing, degrees) and what a
trained GAT computes (neighbourhood attention, attention entropy, t-SNE of embeddings).

Each plot_* function takes plain tensors, draws one figure, writes it as a PNG and returns its path.
Figures render headless (matplotlib's Agg backend) unless show=True. Graphs are drawn with igraph's
matplotlib backend, so no cairo is needed. Layers are counted from 1 in every title, file name and flag
(layer 1 is the first layer); heads from 0, as the tensors index them. A PNG carries its titles as text
(`figure_titles(path)` reads them back), so what a figure says can be checked without looking at it.
"""

import json
import math
from pathlib import Path

import matplotlib
import matplotlib.lines
import numpy as np
import torch

# The notebook and older code read the Planetoid topic names here.
from utils.datasets.planetoid import CITESEER_CLASS_NAMES, CORA_CLASS_NAMES  # noqa: F401

LAYOUTS = {"kk": "layout_kamada_kawai", "fr": "layout_fruchterman_reingold", "drl": "layout_drl",
           "circle": "layout_circle", "tree": "layout_reingold_tilford_circular"}
UNLABELLED_COLOUR = (0.6, 0.6, 0.6, 1.0)


def _new_figure(show, nrows=1, ncols=1, **kwargs):
    """A figure and its axes. Headless (a plain Figure on the Agg canvas, no pyplot, no window)
    unless show=True."""
    if show:
        import matplotlib.pyplot as plt
        return plt.subplots(nrows, ncols, **kwargs)
    from matplotlib.figure import Figure
    figure_kwargs = {key: kwargs.pop(key) for key in ("figsize",) if key in kwargs}
    fig = Figure(**figure_kwargs)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _save(fig, output_path, show):
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    panels = [ax.get_title() for ax in fig.axes if ax.get_title()]
    metadata = {"Title": suptitle or (panels[0] if panels else ""), "Description": json.dumps(panels)}
    fig.savefig(output_path, dpi=120, bbox_inches="tight", metadata=metadata)
    if show:
        import matplotlib.pyplot as plt
        plt.show()
        plt.close(fig)
    return output_path


def figure_titles(path):
    """(the figure's title, [each panel's title]) as written into the PNG by _save."""
    from PIL import Image
    with Image.open(path) as image:
        text = dict(image.text)
    return text.get("Title", ""), json.loads(text.get("Description", "[]"))


def describe_layer(index, num_layers):
    """The name of the layer at 0-based `index`, counted from 1 as every figure counts: 'layer 2 of 3'."""
    return f"layer {index + 1} of {num_layers}"


def _class_colours(num_classes):
    cmap = matplotlib.colormaps["tab10" if num_classes <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(num_classes)]


def _undirected_edges(edge_index):
    """Each undirected edge once, no self loops: what igraph should draw."""
    source, target = edge_index
    keep = source < target
    return torch.stack([source[keep], target[keep]], dim=1).tolist()


def class_names_for(graph):
    """The names the data gives its classes (Cora's and Citeseer's topics, an .npz file's class_names);
    'class <i>' where it names none."""
    if graph.class_names is not None and len(graph.class_names) == graph.num_classes:
        return list(graph.class_names)
    return [f"class {i}" for i in range(graph.num_classes)]


# ----------------------------------------------------------------------------- dataset figures

def plot_graph(edge_index, labels, num_nodes, output_path, layout="kk", class_names=None, title=None, show=False,
               seed=0, legend_title="class"):
    """The whole graph: node size grows with degree, edge width with edge betweenness, colour by class."""
    import igraph as ig
    graph = ig.Graph(n=num_nodes, edges=_undirected_edges(edge_index))
    degrees = np.array(graph.degree())
    betweenness = np.array(graph.edge_betweenness()) if graph.ecount() else np.zeros(0)
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1
    class_names = class_names or [f"class {i}" for i in range(num_classes)]
    colours = _class_colours(num_classes)

    import random
    random.seed(seed)  # igraph's layouts draw from Python's random module
    layout_coordinates = getattr(graph, LAYOUTS[layout])()
    fig, ax = _new_figure(show, figsize=(12, 12))
    edge_widths = 0.2 + 3.0 * betweenness / betweenness.max() if betweenness.size else []
    ig.plot(graph, target=ax, layout=layout_coordinates,
            vertex_size=3 + 2.5 * np.sqrt(degrees),
            vertex_color=[colours[c] if c >= 0 else UNLABELLED_COLOUR for c in labels],
            vertex_frame_width=0, edge_width=edge_widths, edge_color=(0.3, 0.3, 0.3, 0.35))
    handles = [matplotlib.lines.Line2D([], [], marker="o", linestyle="", color=colours[i], label=name)
               for i, name in enumerate(class_names)]
    if (labels < 0).any():
        handles.append(matplotlib.lines.Line2D([], [], marker="o", linestyle="", color=UNLABELLED_COLOUR,
                                               label="no label"))
    # Beside the graph, not over it: a layout fills its square to the corners.
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=10, title=legend_title,
              frameon=True)
    ax.set_title(title or f"{num_nodes} nodes, {graph.ecount()} edges ({layout} layout). Node size: degree, "
                 f"edge width: edge betweenness", fontsize=12)
    ax.set_axis_off()
    return _save(fig, output_path, show)


def degree_statistics(edge_index, num_nodes):
    """In- and out-degree per node, counting the self loop, and the node with the most neighbours."""
    in_degree = torch.bincount(edge_index[1], minlength=num_nodes)
    out_degree = torch.bincount(edge_index[0], minlength=num_nodes)
    self_loops = torch.bincount(edge_index[0][edge_index[0] == edge_index[1]], minlength=num_nodes)
    top = int(torch.argmax(in_degree))
    return {"in_degree": in_degree, "out_degree": out_degree, "max_degree_node": top,
            "max_in_degree": int(in_degree[top]), "max_neighbours": int(in_degree[top] - self_loops[top])}


def plot_degree_statistics(edge_index, num_nodes, output_path, dataset_name="graph", show=False):
    stats = degree_statistics(edge_index, num_nodes)
    fig, axes = _new_figure(show, 1, 3, figsize=(16, 4.5))
    axes[0].plot(stats["in_degree"].numpy(), linewidth=0.6, color="tab:blue")
    axes[0].set(title="in-degree per node", xlabel="node id", ylabel="in-degree (incl. self loop)")
    axes[1].plot(stats["out_degree"].numpy(), linewidth=0.6, color="tab:orange")
    axes[1].set(title="out-degree per node", xlabel="node id", ylabel="out-degree (incl. self loop)")
    degrees = stats["in_degree"].numpy()
    axes[2].hist(degrees, bins=np.arange(1, degrees.max() + 2) - 0.5, color="tab:green", log=True)
    axes[2].set(title="degree histogram", xlabel="in-degree", ylabel="number of nodes (log)")
    fig.suptitle(f"{dataset_name}: max degree node {stats['max_degree_node']} has {stats['max_neighbours']} "
                 f"neighbours + self loop", fontsize=12)
    fig.tight_layout()
    return _save(fig, output_path, show), stats


# ----------------------------------------------------------------------------- trained-model figures

def plot_neighbourhood_attention(edge_index, attention, labels, node, output_path, head=0, layer_name="layer 1",
                                 layout="tree", class_names=None, show=False, graph_name=None, legend_title="class"):
    """One node's incoming neighbourhood and the attention it pays each neighbour.

    Each edge is coloured by log2(attention / uniform attention) on a diverging scale (white =
    uniform, red = more, blue = less; a colour bar gives the scale), so small departures from uniform
    are visible; widths grow only for edges with more than twice the uniform attention.
    attention: [E, H] aligned with edge_index (a layer's attention_weights); head: one of its heads, or None
    for the mean over the heads. labels: [N] class ids
    (or 0/1 for one PPI label). layout: 'tree' (Reingold-Tilford circular, node at the root) or 'kk'.
    layer_name: how the title names the layer ('layer 1 of 2 (gat)'); graph_name, if given, starts the title;
    class_names and legend_title: what the node colours mean.
    """
    import igraph as ig
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    incoming = (edge_index[1] == node).nonzero().flatten()
    neighbours = edge_index[0, incoming].tolist()
    weights = (attention[incoming, head] if head is not None else attention[incoming].mean(1)).double()
    local = {node: 0}
    for neighbour in neighbours:
        local.setdefault(neighbour, len(local))
    graph = ig.Graph(n=len(local), edges=[(local[j], 0) for j in neighbours], directed=True)
    coordinates = graph.layout_reingold_tilford_circular(root=[0], mode="all") if layout == "tree" \
        else getattr(graph, LAYOUTS[layout])()
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1
    colours = _class_colours(max(num_classes, 2))
    class_names = class_names or [f"class {i}" for i in range(num_classes)]
    nodes = list(local)
    max_weight = float(weights.max()) if len(neighbours) else 1.0
    uniform = 1.0 / max(1, len(neighbours))

    # log2 ratio to uniform, symmetric colour range; an edge with zero attention is clipped to the bottom.
    log_ratio = (weights / uniform).clamp_min(2.0 ** -10).log2().numpy()
    limit = max(0.25, float(np.abs(log_ratio).max())) if len(neighbours) else 1.0
    mappable = ScalarMappable(norm=Normalize(-limit, limit), cmap=matplotlib.colormaps["RdBu_r"])
    ratios = 2.0 ** log_ratio

    fig, ax = _new_figure(show, figsize=(11, 10))
    ig.plot(graph, target=ax, layout=coordinates,
            vertex_size=[24] + [14] * (len(nodes) - 1),
            vertex_color=[colours[labels[n]] if labels[n] >= 0 else UNLABELLED_COLOUR for n in nodes],
            vertex_frame_width=0.5,
            edge_width=[1.5 + min(6.0, max(0.0, r - 2.0)) for r in ratios], edge_arrow_size=0.004,
            edge_color=[mappable.to_rgba(v) for v in log_ratio], edge_loop_size=60)
    colour_bar = fig.colorbar(mappable, ax=ax, shrink=0.6, pad=0.02)
    colour_bar.set_label("log2(attention / uniform attention)")
    present = sorted({int(labels[n]) for n in nodes})
    handles = [matplotlib.lines.Line2D([], [], marker="o", linestyle="",
                                       color=colours[c] if c >= 0 else UNLABELLED_COLOUR,
                                       label=class_names[c] if c >= 0 else "no label") for c in present]
    ax.legend(handles=handles, loc="upper left", fontsize=9, title=legend_title)
    self_weight = next((float(w) for j, w in zip(neighbours, weights) if j == node), None)
    self_text = f", self loop {self_weight:.3f}" if self_weight is not None else ""
    what = f"{graph_name}: attention" if graph_name else "Attention"
    which_heads = f"head {head}" if head is not None else f"mean of its {attention.shape[1]} heads"
    ax.set_title(f"{what} of node {node} ({len(neighbours)} incoming edges incl. self loop), {layer_name}, "
                 f"{which_heads}\nmax {max_weight:.3f}, uniform {uniform:.3f}{self_text}; edges above 2x uniform "
                 f"are drawn wider", fontsize=11)
    ax.set_axis_off()
    return _save(fig, output_path, show)


def attention_entropies(edge_index, attention, num_nodes):
    """Per node and head, the entropy of its incoming attention and of the uniform distribution over
    the same neighbourhood (log of its in-degree). Returns ([N, H], [N]) for nodes with edges."""
    target = edge_index[1]
    plogp = torch.where(attention > 0, attention * attention.clamp_min(1e-30).log(), torch.zeros_like(attention))
    entropy = -torch.zeros(num_nodes, attention.shape[1], dtype=attention.dtype).index_add_(0, target, plogp)
    degree = torch.bincount(target, minlength=num_nodes)
    has_edges = degree > 0
    return entropy[has_edges], degree[has_edges].double().log()


def _entropy_bins(uniform, num_bins=30):
    """Shared bins for every panel of one graph: learned entropy never exceeds uniform's (log in-degree)."""
    return np.linspace(0, float(uniform.max()) + 1e-9, num_bins + 1)


def _counts(values, bins):
    return np.histogram(np.clip(values.numpy(), bins[0], bins[-1]), bins)[0]


def _heads_text(heads):
    """[0, 1, 2, 5] -> 'heads 0-2, 5'; [3] -> 'head 3'."""
    runs, start = [], heads[0]
    for previous, head in zip(heads, heads[1:] + [None]):
        if head != previous + 1:
            runs.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = head
    return f"head{'s' if len(heads) > 1 else ''} {', '.join(runs)}"


def entropy_panels(edge_index, attention_per_layer, num_nodes):
    """The panels of plot_attention_entropy: one per distinct histogram. Heads (of any layer) whose entropy
    histograms are identical bin for bin share a panel. Returns (bins, uniform entropy [N], panels), each panel
    a dict: members [(layer, head), ...] (both from 0), entropy [N] (of the first member), equals_uniform."""
    per_layer = [attention_entropies(edge_index, a.double(), num_nodes)[0] for a in attention_per_layer]
    uniform = attention_entropies(edge_index, attention_per_layer[0][:, :1].double(), num_nodes)[1]
    bins = _entropy_bins(uniform)
    uniform_counts = _counts(uniform, bins)
    panels = {}
    for layer, entropy in enumerate(per_layer):
        for head in range(entropy.shape[1]):
            counts = _counts(entropy[:, head], bins)
            panel = panels.setdefault(counts.tobytes(), dict(members=[], entropy=entropy[:, head],
                                                             equals_uniform=np.array_equal(counts, uniform_counts)))
            panel["members"].append((layer, head))
    return bins, uniform, list(panels.values())


def _panel_title(members):
    by_layer = {}
    for layer, head in members:
        by_layer.setdefault(layer, []).append(head)
    return "; ".join(f"layer {layer + 1}, {_heads_text(heads)}" for layer, heads in by_layer.items())


def plot_attention_entropy(edge_index, attention_per_layer, num_nodes, output_path, title="", show=False,
                           heads_per_row=4):
    """Per layer and head, the histogram of the entropy of every node's incoming attention (blue outline) over
    the histogram for uniform attention on the same neighbourhoods (orange, same bins). Heads whose histograms
    are identical bin for bin share one panel that names them all (entropy_panels), and a panel whose learned
    histogram equals the uniform one says so; each layer starts a new row."""
    bins, uniform, panels = entropy_panels(edge_index, attention_per_layer, num_nodes)
    num_layers = len(attention_per_layer)
    by_layer = [[panel for panel in panels if panel["members"][0][0] == layer] for layer in range(num_layers)]
    rows_per_layer = [math.ceil(len(layer_panels) / heads_per_row) for layer_panels in by_layer]
    num_columns = min(heads_per_row, max(len(layer_panels) for layer_panels in by_layer))
    num_rows = sum(rows_per_layer)
    fig, axes = _new_figure(show, num_rows, num_columns, figsize=(max(3.9 * num_columns, 6.5), 3.1 * num_rows + 0.5),
                            squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    first_row = np.cumsum([0] + rows_per_layer)
    for layer, layer_panels in enumerate(by_layer):
        for index, panel in enumerate(layer_panels):
            ax = axes[first_row[layer] + index // heads_per_row, index % heads_per_row]
            ax.set_axis_on()
            ax.hist(uniform.numpy(), bins=bins, color="tab:orange", alpha=0.6, label="uniform attention")
            ax.hist(np.clip(panel["entropy"].numpy(), bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.6,
                    color="tab:blue", label="learned attention")
            notes = (["identical histograms"] if len(panel["members"]) > 1 else []) + \
                (["learned = uniform, bin for bin"] if panel["equals_uniform"] else [])
            ax.set_title(_panel_title(panel["members"]) + (f"\n({'; '.join(notes)})" if notes else ""),
                         fontsize=9)
            ax.set_xlabel("entropy (nats)", fontsize=9)
            if index % heads_per_row == 0:
                ax.set_ylabel("number of nodes", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    merged = len(panels) < sum(a.shape[1] for a in attention_per_layer)
    fig.suptitle((title or "Entropy of each node's incoming attention: learned vs uniform")
                 + ("\nheads whose histograms are identical bin for bin share one panel" if merged else ""),
                 fontsize=12)
    fig.tight_layout()
    return _save(fig, output_path, show)


def plot_attention_entropy_comparison(edge_index, attention_by_model, num_nodes, output_path, title="", show=False):
    """Two (or more) models side by side: one column per model, one row per layer; each panel pools
    the entropy of every head's incoming attention (blue outline) over uniform attention on the same
    neighbourhoods (orange), and its title gives mean learned / mean uniform entropy (1 = uniform). A panel
    whose learned histogram equals the uniform one bin for bin says so; otherwise, one that repeats an earlier
    panel bin for bin names it.

    attention_by_model: {name: [attention of layer 1 [E, H], attention of layer 2, ...]}, all on edge_index.
    """
    names = list(attention_by_model)
    num_rows = max(len(layers) for layers in attention_by_model.values())
    fig, axes = _new_figure(show, num_rows, len(names), figsize=(5.2 * len(names), 3.3 * num_rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    uniform = attention_entropies(edge_index, next(iter(attention_by_model.values()))[0][:, :1].double(),
                                  num_nodes)[1]
    bins = _entropy_bins(uniform)
    uniform_counts = _counts(uniform, bins)
    seen = {}
    for column, name in enumerate(names):
        for row, attention in enumerate(attention_by_model[name]):
            entropy, _ = attention_entropies(edge_index, attention.double(), num_nodes)
            num_heads = attention.shape[1]
            ax = axes[row, column]
            ax.set_axis_on()
            ax.hist(uniform.numpy(), bins=bins, color="tab:orange", alpha=0.6, density=True, label="uniform attention")
            ax.hist(np.clip(entropy.flatten().numpy(), bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.6,
                    color="tab:blue", density=True, label="learned (heads pooled)")
            ratio = float(entropy.mean() / uniform.mean()) if float(uniform.mean()) > 0 else math.nan
            panel = f"{name}, layer {row + 1}"
            counts = _counts(entropy.flatten(), bins)
            # The same density as an earlier panel: counts proportional to its counts (heads pooled, same nodes).
            key = tuple(counts / counts.sum())
            if np.array_equal(counts, num_heads * uniform_counts):
                note = "; learned = uniform, bin for bin"
            else:
                note = f"; identical to {seen[key]}" if key in seen else ""
            seen.setdefault(key, panel)
            ax.set_title(f"{panel} ({num_heads} head{'s' if num_heads > 1 else ''} pooled)\n"
                         f"learned / uniform {ratio:.3f}{note}", fontsize=9)
            ax.set_xlabel("entropy (nats)", fontsize=9)
            if column == 0:
                ax.set_ylabel("density of nodes", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title or "Entropy of each node's incoming attention, side by side", fontsize=12)
    fig.tight_layout()
    return _save(fig, output_path, show)


def plot_embeddings_tsne(embeddings, labels, output_path, class_names=None, title="", show=False, seed=0,
                         perplexity=30.0, legend_title=None):
    """t-SNE of node embeddings [N, D] to 2-D, points coloured by class (or by one binary label)."""
    from sklearn.manifold import TSNE
    embeddings = embeddings.detach().cpu().numpy()
    perplexity = min(perplexity, max(2.0, (len(embeddings) - 1) / 3))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(embeddings)
    labels = np.asarray(labels)
    num_classes = int(labels.max()) + 1
    class_names = class_names or [f"class {i}" for i in range(num_classes)]
    colours = _class_colours(max(num_classes, 2))
    fig, ax = _new_figure(show, figsize=(9, 8))
    for c in range(num_classes):
        chosen = labels == c
        ax.scatter(points[chosen, 0], points[chosen, 1], s=6, color=colours[c], label=class_names[c])
    ax.legend(markerscale=3, fontsize=9, loc="best", title=legend_title)
    ax.set(title=title or "t-SNE of the embeddings", xlabel="t-SNE 1", ylabel="t-SNE 2")
    return _save(fig, output_path, show)


def entropy_summary(edge_index, attention_per_layer, num_nodes):
    """Per layer: mean entropy of learned attention / mean entropy of uniform attention (1 = uniform)."""
    ratios = []
    for attention in attention_per_layer:
        entropy, uniform = attention_entropies(edge_index, attention.double(), num_nodes)
        ratios.append(float(entropy.mean() / uniform.mean()) if float(uniform.mean()) > 0 else math.nan)
    return ratios
