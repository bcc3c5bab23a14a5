//! plexo-kinematics (filled by its issue).
