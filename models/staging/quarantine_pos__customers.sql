{{ quarantine_rows('base_pos__customers', 'pos', 'customers') }}
