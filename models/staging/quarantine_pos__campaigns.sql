{{ quarantine_rows('base_pos__campaigns', 'pos', 'campaigns') }}
