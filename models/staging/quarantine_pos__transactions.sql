{{ quarantine_rows('base_pos__transactions', 'pos', 'transactions') }}
