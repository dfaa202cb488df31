"""Public-holiday calendars by name ("CN", "DE-BY", "US"), from the maintained `holidays` package.

For mainland China ("CN") the package also knows the adjusted working days (调休): weekend days
that are working days because a holiday was moved. Its data follow the State Council's yearly
announcement; a year not yet announced has estimated holidays and no 调休 days, which
`missing_adjusted_days` reports so an operator can add them by date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import holidays


class UnknownCalendar(ValueError):
    pass


@dataclass
class HolidayCalendar:
    """One country's (or region's) public holidays; loads a year's data when first asked."""

    name: str
    _country: str = ""
    _subdiv: str | None = None
    _years: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        country, _, subdiv = self.name.partition("-")
        self._country, self._subdiv = country.upper(), subdiv.upper() or None
        self._first_year = date.today().year
        # only the package's countries: another name may be one of its module's constants
        # ("MON" is holidays.MON, an int), which it would call and fail with a TypeError
        if self._country not in holidays.list_supported_countries():
            raise UnknownCalendar(f"Country {self._country} not available")
        try:
            self._load(self._first_year)
        except NotImplementedError as exc:
            raise UnknownCalendar(str(exc)) from exc

    def names(self) -> set[str]:
        """The names of its holidays this year and next (a greeting's key is matched against
        them: `bot check` warns of one that matches none)."""
        years = (self._first_year, self._first_year + 1)
        return {str(name) for year in years for name in self._load(year).values()}

    def _load(self, year: int) -> Any:
        if year not in self._years:
            language = "zh_CN" if self._country == "CN" else None
            self._years[year] = holidays.country_holidays(
                self._country, subdiv=self._subdiv, years=year, language=language
            )
        return self._years[year]

    def holiday(self, day: date) -> str | None:
        """The holiday's name on `day` (Chinese names for CN), or None on an ordinary day."""
        name = self._load(day.year).get(day)
        return str(name) if name else None

    @property
    def announces_breaks(self) -> bool:
        """Mainland China announces each holiday as one break (放假) that takes in the weekend
        days around it: a shop open on Saturdays is closed on the Saturdays inside it too.
        Elsewhere a holiday is just its day."""
        return self._country == "CN"

    def is_adjusted_workday(self, day: date) -> bool:
        """A weekend day that is a working day (调休)."""
        workdays = getattr(self._load(day.year), "weekend_workdays", ())
        return day in workdays

    def missing_adjusted_days(self, year: int) -> bool:
        """True for CN years whose 调休 working days are not in the data (not announced yet)."""
        if self._country != "CN":
            return False
        workdays = getattr(self._load(year), "weekend_workdays", ())
        return not any(d.year == year for d in workdays)
