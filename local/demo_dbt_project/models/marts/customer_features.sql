{#- Features are computed from what was known at the cutoff; the label looks at the window after it,
    so the ML step never sees the future it has to predict. -#}
{%- set as_of = "date '" ~ var('as_of_date') ~ "'" -%}
{%- set cutoff = as_of ~ " - interval " ~ var('label_window_days') ~ " day" -%}

with known_orders as (
    select * from {{ ref('orders') }}
    where order_date <= {{ cutoff }}
),

history as (
    select
        customer_id,
        count(*) as orders_before_cutoff,
        count(*) filter (where status = 'returned') as returned_orders,
        sum(amount) as value_before_cutoff,
        sum(coupon_amount + gift_card_amount) as voucher_value_before_cutoff,
        max(order_date) as last_order_before_cutoff
    from known_orders
    group by customer_id
),

future as (
    select distinct customer_id
    from {{ ref('orders') }}
    where order_date > {{ cutoff }} and order_date <= {{ as_of }}
)

select
    customers.customer_id,
    customers.country_code,
    date_diff('day', customers.signup_date, ({{ cutoff }})::date) as tenure_days,
    coalesce(history.orders_before_cutoff, 0) as orders_before_cutoff,
    coalesce(history.returned_orders, 0) as returned_orders,
    coalesce(history.value_before_cutoff, 0) as value_before_cutoff,
    coalesce(history.value_before_cutoff / history.orders_before_cutoff, 0) as avg_order_value,
    coalesce(history.voucher_value_before_cutoff / nullif(history.value_before_cutoff, 0), 0)
        as voucher_share,
    date_diff('day', coalesce(history.last_order_before_cutoff, customers.signup_date), ({{ cutoff }})::date)
        as days_since_last_order,
    (future.customer_id is not null)::integer as label_purchased_in_window
from {{ ref('stg_customers') }} as customers
left join history using (customer_id)
left join future using (customer_id)
