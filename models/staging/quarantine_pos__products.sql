{{ quarantine_rows('base_pos__products', 'pos', 'products') }}
