"""Stage 5, the pages: chapters run by papermill under a profile, figures, and the built book.

A notebook needs :class:`cytokit.book.chapter.Chapter` (its artifacts and recorded
numbers), :mod:`cytokit.book.steps` (the chapters' repeated steps as named calls) and
:mod:`cytokit.book.figures`; ``cytokit run`` is :mod:`cytokit.book.runner`.
"""
