with order_summary as (
    select
        customer_id,
        min(order_date) as first_order,
        max(order_date) as most_recent_order,
        count(*) as number_of_orders,
        sum(amount) as customer_lifetime_value
    from {{ ref('orders') }}
    where status != 'returned'
    group by customer_id
)

select
    customers.customer_id,
    customers.first_name,
    customers.last_name,
    customers.country_code,
    countries.country_name,
    customers.signup_date,
    order_summary.first_order,
    order_summary.most_recent_order,
    coalesce(order_summary.number_of_orders, 0) as number_of_orders,
    coalesce(order_summary.customer_lifetime_value, 0) as customer_lifetime_value
from {{ ref('stg_customers') }} as customers
left join {{ ref('countries') }} as countries using (country_code)
left join order_summary using (customer_id)
