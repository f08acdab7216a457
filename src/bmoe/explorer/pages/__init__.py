"""The explorer's pages: each module renders one part of the ledger (chain, tasks, edges, experts, run,
objects, cluster) from a :class:`~bmoe.explorer.pages.view.View` into HTML."""
