//! Minimal spatial algebra (Featherstone, "Rigid Body Dynamics Algorithms", 2008, ch. 2) on fixed-size nalgebra
//! types. All spatial quantities in this crate are expressed in the world frame at the world origin, which removes
//! every frame transformation between bodies from the recursive algorithms (the "world convention" also used by
//! Pinocchio's CRBA/ABA).

use nalgebra::{Matrix3, Matrix6, Vector3, Vector6};

/// A spatial motion vector (twist or spatial acceleration): angular part and linear part of the point at the
/// world origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Motion {
    /// Angular velocity [rad/s] (or acceleration [rad/s²]).
    pub ang: Vector3<f64>,
    /// Linear velocity of the point coinciding with the world origin [m/s] (or [m/s²]).
    pub lin: Vector3<f64>,
}

/// A spatial force vector (wrench): moment about the world origin and force.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Force {
    /// Moment about the world origin [Nm].
    pub ang: Vector3<f64>,
    /// Force [N].
    pub lin: Vector3<f64>,
}

impl Motion {
    pub const ZERO: Motion = Motion { ang: Vector3::new(0.0, 0.0, 0.0), lin: Vector3::new(0.0, 0.0, 0.0) };

    #[inline(always)]
    pub fn scale(&self, s: f64) -> Motion {
        Motion { ang: self.ang * s, lin: self.lin * s }
    }

    #[inline(always)]
    pub fn add(&self, o: &Motion) -> Motion {
        Motion { ang: self.ang + o.ang, lin: self.lin + o.lin }
    }

    #[inline(always)]
    pub fn add_scaled(&self, o: &Motion, s: f64) -> Motion {
        Motion { ang: self.ang + o.ang * s, lin: self.lin + o.lin * s }
    }

    /// Motion cross product `self ×ₘ m`.
    #[inline(always)]
    pub fn cross_motion(&self, m: &Motion) -> Motion {
        Motion { ang: self.ang.cross(&m.ang), lin: self.ang.cross(&m.lin) + self.lin.cross(&m.ang) }
    }

    /// Force cross product `self ×* f`.
    #[inline(always)]
    pub fn cross_force(&self, f: &Force) -> Force {
        Force { ang: self.ang.cross(&f.ang) + self.lin.cross(&f.lin), lin: self.ang.cross(&f.lin) }
    }

    /// Power pairing `self · f`.
    #[inline(always)]
    pub fn dot(&self, f: &Force) -> f64 {
        self.ang.dot(&f.ang) + self.lin.dot(&f.lin)
    }

    /// As a 6-vector, angular part first.
    #[inline(always)]
    pub fn to_vector(self) -> Vector6<f64> {
        Vector6::new(self.ang.x, self.ang.y, self.ang.z, self.lin.x, self.lin.y, self.lin.z)
    }

    #[inline(always)]
    pub fn from_vector(v: &Vector6<f64>) -> Motion {
        Motion { ang: Vector3::new(v[0], v[1], v[2]), lin: Vector3::new(v[3], v[4], v[5]) }
    }
}

impl Force {
    pub const ZERO: Force = Force { ang: Vector3::new(0.0, 0.0, 0.0), lin: Vector3::new(0.0, 0.0, 0.0) };

    #[inline(always)]
    pub fn add(&self, o: &Force) -> Force {
        Force { ang: self.ang + o.ang, lin: self.lin + o.lin }
    }

    /// As a 6-vector, moment first.
    #[inline(always)]
    pub fn to_vector(self) -> Vector6<f64> {
        Vector6::new(self.ang.x, self.ang.y, self.ang.z, self.lin.x, self.lin.y, self.lin.z)
    }
}

/// Spatial inertia of a rigid body (or a composite of bodies) in world coordinates, in its compact 10-parameter
/// form: mass, first mass moment `h = m c` about the world origin, and rotational inertia about the world origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Inertia {
    /// Mass [kg].
    pub mass: f64,
    /// First moment of mass about the world origin `m c` [kg m].
    pub h: Vector3<f64>,
    /// Rotational inertia about the world origin [kg m²].
    pub i_origin: Matrix3<f64>,
}

impl Inertia {
    pub const ZERO: Inertia = Inertia {
        mass: 0.0,
        h: Vector3::new(0.0, 0.0, 0.0),
        i_origin: Matrix3::new(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    };

    /// Body of mass `mass` with centre of mass `com_world` [m] and inertia `i_com_world` about the CoM, world axes.
    #[inline(always)]
    pub fn from_com(mass: f64, com_world: &Vector3<f64>, i_com_world: &Matrix3<f64>) -> Inertia {
        let h = com_world * mass;
        // Parallel-axis theorem: I_O = I_C + m [c]×ᵀ[c]× = I_C + m (|c|² E − c cᵀ).
        let c = com_world;
        let cc = c.dot(c);
        let mut i_origin = *i_com_world;
        i_origin[(0, 0)] += mass * (cc - c.x * c.x);
        i_origin[(1, 1)] += mass * (cc - c.y * c.y);
        i_origin[(2, 2)] += mass * (cc - c.z * c.z);
        let xy = mass * c.x * c.y;
        let xz = mass * c.x * c.z;
        let yz = mass * c.y * c.z;
        i_origin[(0, 1)] -= xy;
        i_origin[(1, 0)] -= xy;
        i_origin[(0, 2)] -= xz;
        i_origin[(2, 0)] -= xz;
        i_origin[(1, 2)] -= yz;
        i_origin[(2, 1)] -= yz;
        Inertia { mass, h, i_origin }
    }

    #[inline(always)]
    pub fn add_assign(&mut self, o: &Inertia) {
        self.mass += o.mass;
        self.h += o.h;
        self.i_origin += o.i_origin;
    }

    /// Momentum `I v` of a body moving with twist `v`.
    #[inline(always)]
    pub fn mul_motion(&self, v: &Motion) -> Force {
        Force { ang: self.i_origin * v.ang + self.h.cross(&v.lin), lin: v.lin * self.mass - self.h.cross(&v.ang) }
    }

    /// Dense 6×6 form, angular rows/columns first.
    pub fn to_matrix(self) -> Matrix6<f64> {
        let hx = self.h.cross_matrix();
        let mut m = Matrix6::zeros();
        m.fixed_view_mut::<3, 3>(0, 0).copy_from(&self.i_origin);
        m.fixed_view_mut::<3, 3>(0, 3).copy_from(&hx);
        m.fixed_view_mut::<3, 3>(3, 0).copy_from(&(-hx));
        m.fixed_view_mut::<3, 3>(3, 3).copy_from(&(Matrix3::identity() * self.mass));
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_inertia_matches_dense_product() {
        let i_com = Matrix3::new(0.02, 0.001, 0.0, 0.001, 0.03, 0.002, 0.0, 0.002, 0.025);
        let inertia = Inertia::from_com(1.7, &Vector3::new(0.1, -0.2, 0.3), &i_com);
        let v = Motion { ang: Vector3::new(0.3, -1.0, 2.0), lin: Vector3::new(-0.5, 0.7, 0.1) };
        let compact = inertia.mul_motion(&v).to_vector();
        let dense = inertia.to_matrix() * v.to_vector();
        assert!((compact - dense).norm() < 1e-12);
        // Kinetic energy of the same body computed about its CoM: ½ m |v_c|² + ½ ωᵀ I_c ω.
        let c = Vector3::new(0.1, -0.2, 0.3);
        let v_com = v.lin + v.ang.cross(&c);
        let e_com = 0.5 * 1.7 * v_com.norm_squared() + 0.5 * v.ang.dot(&(i_com * v.ang));
        let e_spatial = 0.5 * v.dot(&inertia.mul_motion(&v));
        assert!((e_com - e_spatial).abs() < 1e-12);
    }

    #[test]
    fn cross_products_are_duals() {
        // (v ×* f)·m = −f·(v ×ₘ m): the force cross product is the negative transpose of the motion cross product.
        let v = Motion { ang: Vector3::new(0.1, 0.2, -0.3), lin: Vector3::new(1.0, -2.0, 0.5) };
        let m = Motion { ang: Vector3::new(-0.7, 0.4, 0.9), lin: Vector3::new(0.3, 0.3, -1.1) };
        let f = Force { ang: Vector3::new(2.0, -1.0, 0.25), lin: Vector3::new(-0.6, 0.8, 1.5) };
        let lhs = m.dot(&v.cross_force(&f));
        let rhs = -v.cross_motion(&m).dot(&f);
        assert!((lhs - rhs).abs() < 1e-12);
    }
}
