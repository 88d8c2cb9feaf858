-- A member's active holds are counted on every hold (`hold_slot`: user_id, status = 'held',
-- hold_expires_at > now()). With only bookings_user_idx (every booking the member ever made) and
-- bookings_held_expiry_idx (every active hold of every member), the planner bit-ANDs the two, so a
-- hold's cost grew with the number of holds everybody else had open: exactly what a club's rush
-- hour brings. This index holds just the live holds, by member, so the count reads the member's
-- few entries whatever the rest of the table holds.
CREATE INDEX bookings_member_holds_idx ON bookings (user_id, hold_expires_at) WHERE status = 'held';
