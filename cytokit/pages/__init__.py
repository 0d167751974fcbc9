"""What each chapter's page computes and says, by chapter, with its figures; the machinery is :mod:`cytokit.book`.

A notebook opens its :class:`cytokit.book.chapter.Chapter`, calls the steps of its page
module (:mod:`.training` for chapters 02 and 04, :mod:`.tuning` for 03, :mod:`.results`
for 05, :mod:`.xai` for 06, :mod:`.findings` for the first page), shared scoring from
:mod:`.scores`, wording from :mod:`.words` and figures from :mod:`.figures`.
"""
