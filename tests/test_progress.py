"""Progress bars: shown for long work, silenced for the book's pages."""

from cytokit import progress


def test_bar_shows_unless_disabled_by_caller_or_environment(capsys, monkeypatch):
    list(progress.bar(range(3), desc="counting"))
    assert "counting" in capsys.readouterr().err
    list(progress.bar(range(3), enabled=False, desc="counting"))
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what cytokit run sets for the chapters
    list(progress.bar(range(3), desc="counting"))
    assert capsys.readouterr().err == ""
