{#-
    The holidays of the revenue forecast, in SQL: the rule of
    xsell.ml.forecast.holiday_calendar (New Year's Day, Good Friday, Easter Monday,
    Christmas Eve, Christmas Day, Boxing Day, New Year's Eve; Easter by the anonymous
    Gregorian computus), so that dim_dates flags the days the forecast treats as
    holidays on every engine (the forecast is a dbt Python model, off on Spark).
    tests/python/test_star_schema.py holds the two equal on every day of 1583-2299:
    change both together.
-#}

{#- Integer division of non-negative integers (both engines divide integers into a double). -#}
{% macro floor_div(numerator, denominator) -%}
    cast(floor(({{ numerator }}) / {{ denominator }}) as integer)
{%- endmacro %}


{#-
    A select of (holiday_date, holiday_name) for every year of `years`, a relation or
    CTE with an integer column `year`. The computus goes in steps, one subquery each,
    with the names of easter_sunday() in xsell.ml.forecast.
-#}
{% macro holiday_dates(years) -%}
    {%- set fixed = [
        (1, 1, "New Year's Day"),
        (12, 24, "Christmas Eve"),
        (12, 25, "Christmas Day"),
        (12, 26, "Boxing Day"),
        (12, 31, "New Year's Eve"),
    ] -%}
    select
        holiday_date,
        cast(holiday_name as {{ dbt.type_string() }}) as holiday_name
    from (
        {%- for month, day, name in fixed %}
        select
            make_date(year, {{ month }}, {{ day }}) as holiday_date,
            '{{ name | replace("'", "''") }}' as holiday_name
        from {{ years }}
        union all
        {%- endfor %}
        select
            cast({{ dbt.dateadd("day", "offsets.day_offset", "easter.easter_sunday") }} as date)
                as holiday_date,
            offsets.holiday_name
        from (
            select
                make_date(
                    year,
                    {{ xsell.floor_div("h + m - 7 * n + 114", 31) }},
                    ((h + m - 7 * n + 114) % 31) + 1
                ) as easter_sunday
            from (
                select
                    year,
                    h,
                    m,
                    {{ xsell.floor_div("a + 11 * h + 22 * m", 451) }} as n
                from (
                    select
                        year,
                        a,
                        h,
                        (32 + 2 * e + 2 * i - h - k) % 7 as m
                    from (
                        select
                            year,
                            a,
                            e,
                            (19 * a + b - d - g + 15) % 30 as h,
                            {{ xsell.floor_div("c", 4) }} as i,
                            c % 4 as k
                        from (
                            select
                                year,
                                a,
                                b,
                                c,
                                {{ xsell.floor_div("b", 4) }} as d,
                                b % 4 as e,
                                {{ xsell.floor_div("b - f + 1", 3) }} as g
                            from (
                                select
                                    year,
                                    year % 19 as a,
                                    {{ xsell.floor_div("year", 100) }} as b,
                                    year % 100 as c,
                                    {{ xsell.floor_div(xsell.floor_div("year", 100) ~ " + 8", 25) }}
                                        as f
                                from {{ years }}
                            ) as century_terms
                        ) as moon_terms
                    ) as full_moon
                ) as weekday_terms
            ) as correction
        ) as easter
        cross join (
            select
                -2 as day_offset,
                'Good Friday' as holiday_name
            union all
            select
                1 as day_offset,
                'Easter Monday' as holiday_name
        ) as offsets
    ) as holidays
{%- endmacro %}
