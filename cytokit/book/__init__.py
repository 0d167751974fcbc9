"""The machinery behind the pages: a chapter's folder, glue, the runner, the build, parameters, profiles, cluster.

What a page computes and says lives in :mod:`cytokit.pages`; ``cytokit run`` is
:mod:`cytokit.book.runner`.
"""
