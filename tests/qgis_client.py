"""A land officer's QGIS, headless: run by Debian's system Python, which has PyQGIS.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_client.py BASE COLLECTION \
        "minx,miny,maxx,maxy" LAND_USE OUT.png

Loads the collection through QGIS's own OAPIF provider (not GDAL), reads every feature,
the features in a bbox (exact intersection, as the server answers a bbox) and those of one
land use, renders the layer to a PNG and prints what it found as one JSON line. The test
(tests/test_qgis_client.py) compares that with the server's own answers.
"""

from __future__ import annotations

import json
import os
import sys

# QGIS 3.22 crashes when its application or a provider is destroyed at the end of a scope;
# what main() makes lives until os._exit
_KEEP: list = []


def main(base: str, collection: str, bbox: str, land_use: str, png: str) -> dict:
    from qgis.core import (
        QgsApplication,
        QgsFeatureRequest,
        QgsMapRendererSequentialJob,
        QgsMapSettings,
        QgsRectangle,
        QgsVectorLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    app = QgsApplication([], False)
    app.initQgis()
    uri = f"url='{base}' typename='{collection}' restrictToRequestBBOX='0'"
    layer = QgsVectorLayer(uri, collection, "OAPIF")
    _KEEP.extend([app, layer])
    if not layer.isValid():
        return {"valid": False, "error": layer.error().summary()}
    ids = {f["parcel_ref"] for f in layer.getFeatures()}
    minx, miny, maxx, maxy = (float(v) for v in bbox.split(","))
    req = QgsFeatureRequest().setFilterRect(QgsRectangle(minx, miny, maxx, maxy))
    req.setFlags(QgsFeatureRequest.ExactIntersect)
    in_bbox = {f["parcel_ref"] for f in layer.getFeatures(req)}
    expr = QgsFeatureRequest().setFilterExpression(f"\"land_use\" = '{land_use}'")
    of_use = {f["parcel_ref"] for f in layer.getFeatures(expr)}

    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(400, 300))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    _KEEP.extend([settings, job])
    image = job.renderedImage()
    image.save(png, "PNG")
    white = QColor(255, 255, 255).rgb()
    drawn = sum(1 for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)
                if image.pixel(x, y) != white)
    return {"valid": True, "crs": layer.crs().authid(), "count": len(ids),
            "reported_count": layer.featureCount(), "ids": sorted(ids),
            "bbox": sorted(in_bbox), "land_use": sorted(of_use),
            "drawn_pixels": drawn,
            "sampled_pixels": (image.width() // 4) * (image.height() // 4)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:6])), flush=True)
    os._exit(0)  # no teardown (see _KEEP): the answer is out, nothing needs a clean exit
