{{ quarantine_rows('base_pos__restaurant_orders', 'pos', 'restaurant_orders') }}
