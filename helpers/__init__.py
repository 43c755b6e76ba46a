"""Helpers for the fine-tuning course: one module per concept.

- :mod:`helpers.profile`: fast/full profiles, device, seeding, the one-line ``setup()`` report
- :mod:`helpers.download`: registry of remote files, verified downloads, safe extraction, weights
- :mod:`helpers.world`: the offline mini world (generated source and target data sets)
- :mod:`helpers.data`: transforms, robust image reading, datasets and loaders
- :mod:`helpers.models`: source model, target model, layer groups, freezing, parameter groups
- :mod:`helpers.training`: the training loop, schedules, distillation (knows neither data nor models)
- :mod:`helpers.compression`: a package: pruning, quantization, measure, config (YAML), workflow
- :mod:`helpers.plots`: images, training curves, learning-rate schedules, compression trade-offs
- :mod:`helpers.grading`: small checks shared by the notebooks' visible and hidden tests
"""
from helpers.profile import Profile, get_profile, seed_everything, setup

__all__ = ["Profile", "get_profile", "seed_everything", "setup"]
