"""For each chapter, the package's functions whose source its page shows where the prose discusses the method.

One line per chapter: (module, function) pairs. The built page must show each function's
source as it is in the package (``{literalinclude}`` with ``:pyobject:``), so the page can
never drift from the code that ran.
"""

METHOD = {
    "02_baseline": [("cytokit.models.network", "build_cnn"), ("cytokit.models.network", "_conv_block"),
                    ("cytokit.models.network", "compile_model"), ("cytokit.models.network", "_optimizer")],
    "03_tuning": [("cytokit.models.tuning", "trial_network"), ("cytokit.models.tuning", "effective_learning_rate"),
                  ("cytokit.models.tuning", "random_search"), ("cytokit.models.tuning", "search")],
    "04_augmentation": [("cytokit.models.augmentation", "augmenter"),
                        ("cytokit.models.augmentation", "balanced_indices"),
                        ("cytokit.models.augmentation", "upsampled_dataset")],
    "05_test_results": [("cytokit.evaluation.statistics", "intervals"), ("cytokit.evaluation.simulation", "simulated_errors"),
                        ("cytokit.evaluation.statistics", "_bounds"), ("cytokit.evaluation.statistics", "compare"),
                        ("cytokit.evaluation.statistics", "verdict")],
    "06_xai": [("cytokit.xai.explain", "explain_labels"), ("cytokit.xai.sufficiency", "sufficiency"),
               ("cytokit.xai.fills", "source"), ("cytokit.xai.fills", "imputed_values"),
               ("cytokit.pages.xai", "sufficiency_under_fills"), ("cytokit.xai.randomisation", "randomised_models"),
               ("cytokit.xai.robustness", "run_setting"), ("cytokit.xai.controls", "stability")],
}
