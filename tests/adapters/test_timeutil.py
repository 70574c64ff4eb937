"""Epoch milliseconds <-> PAI's ISO-8601 strings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from mmdm.adapters.timeutil import from_iso, to_iso

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# datetime's own range: years 1 .. 9999
MS = st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999)


def test_known_instants():
    assert to_iso(1_736_692_561_000) == "2025-01-12T14:36:01.000Z"
    assert to_iso(0) == "1970-01-01T00:00:00.000Z"
    assert to_iso(-1) == "1969-12-31T23:59:59.999Z"
    assert to_iso(951_782_400_123) == "2000-02-29T00:00:00.123Z"
    assert to_iso(None) is None


@given(MS)
def test_to_iso_agrees_with_datetime_and_round_trips(ms):
    expected = (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert to_iso(ms) == expected.rjust(24, "0")
    assert from_iso(to_iso(ms)) == ms
