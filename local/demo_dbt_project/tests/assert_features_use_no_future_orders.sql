-- A customer cannot have more orders before the cutoff than in their whole history.
select features.customer_id
from {{ ref('customer_features') }} as features
join {{ ref('customers') }} as customers using (customer_id)
where features.orders_before_cutoff - features.returned_orders > customers.number_of_orders
