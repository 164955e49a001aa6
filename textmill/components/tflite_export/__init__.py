from textmill.components.tflite_export.component import (
    TFLiteExport,
    TFLiteModel,
)

__all__ = ["TFLiteExport", "TFLiteModel"]
