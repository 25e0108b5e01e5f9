-- Every payment dollar lands on exactly one order: totals of orders and stg_payments must agree.
select orders_total, payments_total
from (select sum(amount) as orders_total from {{ ref('orders') }})
cross join (select sum(amount) as payments_total from {{ ref('stg_payments') }})
where abs(orders_total - payments_total) > 0.005
