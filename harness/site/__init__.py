"""Static, offline leaderboard website with item-level drill-down (``write_site``)."""

from harness.site.build import fmt_value, load_items, safe_name, write_site
from harness.stats.warnings import RowWarning, compute_warnings

__all__ = ["RowWarning", "compute_warnings", "fmt_value", "load_items", "safe_name", "write_site"]
