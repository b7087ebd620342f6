"""The package itself: public names, lazy modules, import cost."""
import subprocess
import sys

import nflows_np as nf

PUBLIC = ("Flow", "FlowModel", "StandardNormal", "Planar", "Radial", "Sylvester", "AdditiveCoupling", "AffineCoupling",
          "MaskedAutoregressive", "Permutation", "Reverse", "ElementwiseAffine", "Linear", "LULinear", "QRLinear",
          "ActNorm", "datasets", "targets", "train", "optim", "gradcheck", "plotting", "grading")


def test_every_public_name_of_the_contract_is_there():
    missing = [name for name in PUBLIC if not hasattr(nf, name)]
    assert not missing, missing
    assert set(PUBLIC) <= set(dir(nf))


def test_import_loads_neither_matplotlib_nor_scipy_nor_the_grader():
    """``import nflows_np`` stays light: plotting and grading load on first use, scipy where it is used."""
    code = ("import sys, nflows_np; heavy = [m for m in ('matplotlib', 'scipy', 'nflows_np.grading', 'nflows_np.plotting') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported eagerly: {out}"


def test_lazy_modules_load_on_first_use():
    code = "import sys, nflows_np as nf; nf.plotting; print('matplotlib.pyplot' in sys.modules, nf.grading.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"MPLBACKEND": "Agg", "PATH": ""}).stdout.split()
    assert out == ["True", "nflows_np.grading"]
