select
    id as customer_id,
    first_name,
    last_name,
    email,
    country as country_code,
    signup_date
from {{ source('raw', 'customers') }}
