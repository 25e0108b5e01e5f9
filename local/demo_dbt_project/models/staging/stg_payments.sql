select
    id as payment_id,
    order_id,
    payment_method,
    {{ jaffle_utils.cents_to_dollars('amount_cents') }} as amount
from {{ source('raw', 'payments') }}
