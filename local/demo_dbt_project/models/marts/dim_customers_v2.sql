select
    customers.customer_id,
    customers.first_name || ' ' || customers.last_name as full_name,
    customers.email,
    customers.country_code,
    countries.region,
    customers.signup_date
from {{ ref('stg_customers') }} as customers
left join {{ ref('countries') }} as countries using (country_code)
