-- The package's generic payments staging: every payment, with a voucher flag.
select
    id as payment_id,
    order_id,
    payment_method,
    payment_method in ('coupon', 'gift_card') as is_voucher,
    {{ cents_to_dollars('amount_cents') }} as amount
from {{ source('raw', 'payments') }}
