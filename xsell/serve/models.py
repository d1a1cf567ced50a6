"""The shapes of the API's answers, for its OpenAPI page (and the tests, which check
every answer against them). Field descriptions are what the marts' columns mean."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NotAvailable(Model):
    """An analysis that did not run on this store's data, and why (from
    marts.fct_analysis_coverage)."""

    analysis: str
    status: str = Field(description="not_applicable, no_result or not_built")
    reason: str | None = Field(description="Why, in a retailer's words.")


class Error(Model):
    detail: str
    analysis: NotAvailable | None = None


class Profile(Model):
    has_profile: bool | None
    household_size: int | None
    distance_km: float | None
    joined_at: str | None


class Purchases(Model):
    has_purchase: bool | None
    first_purchase_date: str | None
    last_purchase_date: str | None
    purchase_receipts: int | None
    revenue: float | None
    avg_order_value: float | None
    anchor_receipt_share: float | None


class Rfm(Model):
    recency_days: int | None
    frequency: int | None
    monetary: float | None
    recency_score: int | None = Field(description="1 (long ago) to 5 (recent).")
    frequency_score: int | None
    monetary_score: int | None
    rfm_cell: str | None
    segment: str | None = Field(description="RFM segment, e.g. Champions, At Risk.")
    is_lapsing: bool | None
    as_of_date: str | None


class LifetimeValue(Model):
    probability_alive: float | None
    expected_purchases: float | None = Field(
        description="Purchase days expected over the horizon (BG/NBD)."
    )
    expected_spend: float | None
    lifetime_value: float | None = Field(
        description="Discounted expected spend over the horizon (CLV)."
    )
    horizon_days: int | None
    discount_rate_annual: float | None
    as_of_date: str | None


class MlSegment(Model):
    segment_id: int | None
    segment_name: str | None
    distance_to_centroid: float | None


class RestaurantPropensity(Model):
    probability: float | None = Field(
        description="The model's P(restaurant visit) on the member's latest scored receipt."
    )
    receipt_id: str | None
    store_id: str | None
    sold_date: str | None
    split: str | None


class Customer(Model):
    customer_id: str
    profile: Profile
    purchases: Purchases
    rfm: Rfm | None
    lifetime_value: LifetimeValue | None
    ml_segment: MlSegment | None
    restaurant_propensity: RestaurantPropensity | None = Field(
        description="Null for a member without a scored receipt."
    )
    not_available: dict[str, NotAvailable] = Field(
        description="Sections whose analysis did not run on this data, with the reason."
    )


class Recommendation(Model):
    rank: int
    product_id: str
    product_name: str | None
    category: str | None
    score: float | None
    reason: str | None = Field(
        description="The signal that put the product there: popular, popular_now, "
        "popular_in_store, similar_to_past_purchases, bought_together, complete_the_room "
        "or buy_again."
    )
    is_repeat_purchase: bool | None


class Recommendations(Model):
    customer_id: str
    as_of_date: str | None
    is_cold_start: bool | None = Field(
        description="The member has no purchases: the list is the popularity fallback."
    )
    fallback: str | None = Field(
        description="cold_start when the build has no list for this customer and the "
        "cold-start list (popularity) is served instead."
    )
    not_available: NotAvailable | None
    items: list[Recommendation]


class Product(Model):
    """From marts.dim_products (a file published before it existed: id, name, category
    and the anchor flag only)."""

    product_id: str
    product_name: str | None
    category: str | None = Field(description="An anchor's category is its anchor family.")
    size_class: str | None
    is_anchor: bool | None
    is_addon: bool | None
    is_impulse: bool | None
    is_merchandise: bool | None
    median_unit_price: float | None
    price_band: int | None = Field(description="1 (cheapest fifth) to 5.")


class RuleItem(Model):
    product_id: str
    product_name: str | None
    category: str | None


class CategoryItem(Model):
    category: str


class _RuleFigures(Model):
    support: float | None = Field(description="Share of receipts holding the whole rule.")
    confidence: float | None = Field(
        description="Share of receipts holding the antecedent that also hold the consequent."
    )
    lift: float | None
    rule_basket_count: int | None
    antecedent_basket_count: int | None
    n_baskets: int | None


class Rule(_RuleFigures):
    antecedent: list[RuleItem]
    consequent: RuleItem


class CategoryRule(_RuleFigures):
    antecedent: list[CategoryItem]
    consequent: CategoryItem


class RoomAddOn(Model):
    anchor_family: str
    rank: int
    product_id: str
    product_name: str | None
    category: str | None
    attach_rate: float | None = Field(
        description="Share of the family's anchor receipts holding the add-on (the "
        "confidence of anchor family -> add-on), shrunk towards the base rate."
    )
    base_rate: float | None
    lift: float | None
    together_receipts: int | None
    anchor_receipts: int | None


class Bundles(Model):
    product: Product
    rules: list[Rule] = Field(description="Product rules whose antecedent holds the product.")
    category_rules: list[CategoryRule] = Field(
        description="Category rules whose antecedent holds the product's category."
    )
    complete_the_room: list[RoomAddOn] = Field(
        description="For an anchor: the add-ons its family's buyers take along."
    )
    completes_rooms: list[RoomAddOn] = Field(
        description="The anchor families whose complete-the-room list holds the product."
    )
    not_available: dict[str, NotAvailable]


class Neighbour(Model):
    rank: int
    product_id: str
    product_name: str | None
    category: str | None
    cosine_similarity: float | None
    together_count: int | None
    basket_count: int | None
    related_basket_count: int | None
    median_unit_price: float | None
    related_median_unit_price: float | None


class Similar(Model):
    product: Product
    similar: list[Neighbour] = Field(description="Products bought by the same customers.")
    upsell: list[Neighbour] = Field(description="Dearer products of the same category.")
    not_available: NotAvailable | None


class RfmSegment(Model):
    name: str
    priority: int | None
    is_lapsing: bool | None
    customers: int | None
    customer_share: float | None
    revenue: float | None
    revenue_share: float | None
    revenue_at_risk: float | None
    expected_spend: float | None
    expected_discounted_value: float | None


class MlSegmentSummary(Model):
    name: str | None
    segment_id: int | None
    customers: int


class Segments(Model):
    rfm: list[RfmSegment]
    ml: list[MlSegmentSummary]
    not_available: dict[str, NotAvailable]


class SegmentCustomer(Model):
    customer_id: str
    rfm_segment: str | None
    rfm_cell: str | None
    ml_segment_name: str | None
    lifetime_value: float | None
    expected_purchases: float | None
    probability_alive: float | None
    last_purchase_date: str | None


class SegmentPage(Model):
    segment: str
    kind: str = Field(description="rfm or ml")
    total: int
    limit: int
    offset: int
    next_offset: int | None
    customers: list[SegmentCustomer] = Field(description="By lifetime value, then id.")


class CoverageRow(Model):
    analysis: str
    store_id: str
    title: str | None
    status: str
    row_count: int
    reason: str | None


class CoverageSummary(Model):
    analyses: int
    ran: int
    rows: list[CoverageRow]


class Health(Model):
    status: str
    run_id: str = Field(description="First 12 hex digits of the published file's sha256.")
    sha256: str
    published_at: str
    published_file: str
    size_bytes: int
    identified_by: str = Field(
        description="publish record (written by the publish step) or file (hashed here)."
    )
    build: dict[str, str]
    products_from: str
    coverage: CoverageSummary
