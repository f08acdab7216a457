"""``bmoe reproduce``: the paper's Section V experiments (Fig. 2, 4a, 4b, 4c) with plots and a report."""
