from pnlp_bench.mixer.data.base import DataConfig, DataError, Example, LoadedData, load_data

__all__ = ["DataConfig", "DataError", "Example", "LoadedData", "load_data"]
