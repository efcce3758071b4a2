"""What a study is: its preset, resolved once (``resolve``), its objectives and constraints,
and the questions asked of its trials (``queries``)."""

from search.study.preset import StudyPreset, names
from search.study.resolve import ResolvedStudy, resolve, resolve_text

__all__ = ["ResolvedStudy", "StudyPreset", "names", "resolve", "resolve_text"]
