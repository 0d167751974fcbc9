"""The reader's-view checks the built-book tests rely on, each shown to fail on a hand-made page, in seconds."""

from __future__ import annotations

import json

import pytest

import pages

FRAME = ('<html><body><nav>None</nav><main><article>{}</article></main>'
         '<script>var x = {{"a": NaN}};</script></body></html>')


def page(tmp_path, body: str, name: str = "p.html"):
    path = tmp_path / name
    path.write_text(FRAME.format(body), encoding="utf-8")
    return path


def plotly(traces, layout) -> str:
    return (f'<div id="f" class="plotly-graph-div"></div><script>Plotly.newPlot( "f", {json.dumps(traces)}, '
            f'{json.dumps(layout)}, {{"responsive": true}})</script>')


CLEAN = ("<section id='a'><h2>Results<a class='headerlink' href='#a'>#</a></h2><p>None is called better here; "
         "the model's accuracy is 81.8 % (78.0–85.3).</p>"
         "<div class='cell_input'><pre>run_dir = None  # {'a': 1}</pre></div><p><code>np.argmax(x)</code></p>"
         "<table><thead><tr><th>model</th><th>test</th></tr></thead><tbody><tr><td>a</td><td>81.8 %</td></tr>"
         "</tbody></table><pre>(None, 48, 48, 3)</pre></section>")


def test_a_clean_page_passes_code_and_scripts_left_out(tmp_path):
    p = page(tmp_path, CLEAN + plotly([{"type": "bar", "x": ["a"], "y": [1]}],
                                      {"xaxis": {"title": {"text": "class"}}, "yaxis": {"title": {"text": "n"}}}))
    assert pages.raw_values(p) == [] and pages.empty_sections(p) == [] and pages.figure_problems(p) == []


@pytest.mark.parametrize("shown,label", [("training time (s) | None", "None"), ("02_baseline NaN", "NaN"),
                                         ("optimizer ['adam', 'sgd']", "dict or list repr"),
                                         ("{'dropout': 0.2}", "dict or list repr"),
                                         ("value np.float64(0.5)", "numpy repr"),
                                         ("Interval(estimate=0.5, low=0.4)", "object repr")])
def test_raw_values_a_reader_would_see_are_found(tmp_path, shown, label):
    found = pages.raw_values(page(tmp_path, f"<p>{shown}</p>"))
    assert found and found[0].startswith(label), found


def test_a_heading_over_nothing_and_a_column_without_values_are_found(tmp_path):
    empty = "<section id='e'><h2>Validation<a class='headerlink' href='#e'>#</a></h2></section>"
    assert pages.empty_sections(page(tmp_path, empty)) == ["section 'Validation' has nothing under its heading"]
    table = ("<table><thead><tr><th></th><th>validation</th><th>test</th></tr></thead><tbody>"
             "<tr><th>a</th><td>–</td><td>81.8 %</td></tr><tr><th>b</th><td>nan</td><td>77.2 %</td></tr>"
             "</tbody></table>")
    assert pages.empty_sections(page(tmp_path, table)) == ["table column 'validation' holds no value in any row"]
    no_rows = "<table><thead><tr><th>path</th><th>reason</th></tr></thead><tbody></tbody></table>"
    assert "has no rows" in pages.empty_sections(page(tmp_path, no_rows))[0]


def test_figures_without_data_or_axis_titles_are_found(tmp_path):
    untitled = plotly([{"type": "bar", "x": ["a"], "y": [1]}], {"title": {"text": "Sizes"},
                                                                  "yaxis": {"title": {"text": "n"}}})
    assert pages.figure_problems(page(tmp_path, untitled)) == ["'Sizes' has no title on its x axis"]
    empty = plotly([{"type": "scatter", "x": [], "y": []}], {"title": {"text": "Per class"}})
    assert pages.figure_problems(page(tmp_path, empty)) == ["'Per class' has no data"]
    images = plotly([{"type": "image", "source": "data:image/png;base64,AA"}],
                    {"xaxis": {"visible": False}, "yaxis": {"visible": False}})
    assert pages.figure_problems(page(tmp_path, images)) == []  # pictures need no axis titles
    shared = plotly([{"x": [1], "y": [1], "xaxis": "x", "yaxis": "y"}, {"x": [1], "y": [1], "xaxis": "x2",
                                                                          "yaxis": "y2"}],
                    {"xaxis": {}, "xaxis2": {"title": {"text": "OD"}}, "yaxis": {"title": {"text": "share"}},
                     "yaxis2": {}})
    assert pages.figure_problems(page(tmp_path, shared)) == []  # subplots sharing an axis title


def test_typed_arrays_count_as_data(tmp_path):
    typed = plotly([{"type": "bar", "x": ["a"], "y": {"dtype": "f8", "bdata": "AAAAAAAA8D8="}}],
                   {"xaxis": {"title": {"text": "class"}}, "yaxis": {"title": {"text": "n"}}})
    assert pages.figure_problems(page(tmp_path, typed)) == []
